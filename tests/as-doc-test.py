#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The man pages, the bash completion and the zh_CN catalogue, checked against what the programs
# really print: every verb, alias and option of 'aerosyncctl help --json' is in aerosyncctl(1)
# and offered by the completion, every option of 'aerosyncd --help-all' (and of the notifier's)
# is in its page, groff has nothing to warn about, every string of the sources is translated and
# 'LANGUAGE=zh_CN aerosyncctl --help' comes out in Chinese. Prints TAP.
#
# Environment (set by tests/meson.build): AEROSYNCCTL_PATH, AEROSYNCD_PATH, AEROSYNC_NOTIFIER_PATH
# (optional), AS_MAN_DIR (the configured pages), AS_MO_FILE (the built zh_CN catalogue) and
# AS_SOURCE_ROOT.
#
# Locales: glibc ignores LANGUAGE only when the locale is "C" or "POSIX"; C.UTF-8 (always there on
# Debian, unlike zh_CN.UTF-8) is neither, so LC_ALL=C.UTF-8 LANGUAGE=zh_CN selects the catalogue
# and UTF-8 output without generating a locale.

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MAN_PAGES = ["aerosyncd.1", "aerosyncctl.1", "aerosync-notifier.1"]
# the man page renders at this width so that no option name is broken across lines
MAN_WIDTH = 200
# a tagged paragraph's tag in the rendered text (.TP at the top level of a section)
MAN_TAG_INDENT = 7
# a string of the zh_CN catalogue that --help prints, and its English original
ZH_USAGE = "用法：aerosyncctl"
EN_USAGE = "Usage: aerosyncctl"
ZH_TOKEN_GENERATE = "为发送方创建访问令牌"
EN_TOKEN_GENERATE = "Create an access token for senders"
# keywords of meson's 'glib' gettext preset that the sources use
XGETTEXT_ARGS = [
    "--from-code=UTF-8",
    "--add-comments=TRANSLATORS:",
    "--keyword=_",
    "--keyword=N_",
    "--keyword=C_:1c,2",
    "--keyword=NC_:1c,2",
    "--keyword=g_dngettext:2,3",
]
COMMAND_TIMEOUT_S = 60


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def diag(self, text):
        for line in str(text).splitlines():
            print(f"# {line}")

    def ok(self, cond, name, details=None):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}")
        if not cond:
            self.failed += 1
            if details:
                self.diag(details)
        sys.stdout.flush()
        return cond

    def skip(self, name, reason):
        self.n += 1
        print(f"ok {self.n} - {name} # SKIP {reason}")
        sys.stdout.flush()

    def finish(self):
        print(f"1..{self.n}")
        return 1 if self.failed else 0


def run(argv, env=None, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          timeout=COMMAND_TIMEOUT_S)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr}")
    return proc


def base_env():
    env = dict(os.environ)
    for name in ("LANGUAGE", "LANG", "LC_MESSAGES", "AEROSYNC_LOCALEDIR"):
        env.pop(name, None)
    env["LC_ALL"] = "C.UTF-8"
    return env


def long_options(help_text):
    """the long options of a GOption --help-all output, without the dashes"""
    return sorted(set(re.findall(r"^\s+(?:-\w, )?--([\w-]+)", help_text, re.M)))


def render_man(path):
    env = base_env()
    env.update(MANWIDTH=str(MAN_WIDTH), MANPAGER="cat", PAGER="cat")
    env.pop("MAN_KEEP_FORMATTING", None)
    text = run(["man", "-E", "UTF-8", "-l", path], env=env).stdout
    # overstrike bold and underline, should man leave them in
    return re.sub(r".\x08", "", text)


def man_sections(text):
    """section title -> its lines"""
    sections = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.strip()
            sections.setdefault(current, [])
        elif current is not None:
            sections[current].append(line)
    return sections


def man_tagged(lines):
    """tag -> the lines of its paragraph, for the tagged paragraphs at the top of a section"""
    items = {}
    tag = None
    indent = " " * MAN_TAG_INDENT
    for line in lines:
        if line.startswith(indent) and not line.startswith(indent + " "):
            # a short tag shares its line with the start of the paragraph
            tag = re.split(r"\s{2,}", line.strip())[0]
            items[tag] = [line]
        elif tag is not None:
            items[tag].append(line)
    return items


def words_in(lines):
    return set(re.findall(r"[\w.-]+", " ".join(lines)))


def check_man_warnings(tap, man_dir):
    if shutil.which("man") is None:
        for page in MAN_PAGES:
            tap.skip(f"{page}: groff has no warnings", "man (man-db) is not installed")
        return False
    for page in MAN_PAGES:
        path = os.path.join(man_dir, page)
        proc = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path], check=False)
        tap.ok(proc.returncode == 0 and proc.stderr == "", f"{page}: groff has no warnings",
               proc.stderr)
    return True


def check_ctl_page(tap, man_dir, ctl, help_json):
    text = render_man(os.path.join(man_dir, "aerosyncctl.1"))
    sections = man_sections(text)
    for title in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "VERBS", "EXIT STATUS",
                  "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
        tap.ok(title in sections, f"aerosyncctl.1 has the {title} section", list(sections))
    verbs = man_tagged(sections.get("VERBS", []))
    for verb in help_json["verbs"]:
        name = verb["name"]
        # the tag is the verb, then its arguments
        tags = [tag for tag in verbs if tag == name or tag.startswith(name + " ")]
        if not tap.ok(tags, f"aerosyncctl.1 documents the verb '{name}'", sorted(verbs)):
            continue
        body = verbs[tags[0]]
        body_text = " ".join(" ".join(body).split())
        missing = [f"--{o}" for o in verb["options"] if f"--{o}" not in words_in(body)]
        tap.ok(not missing, f"aerosyncctl.1: the options of '{name}' are under it",
               f"missing: {missing}")
        missing = [a for a in verb["aliases"] if a not in body_text]
        tap.ok(not missing, f"aerosyncctl.1: the aliases of '{name}' are under it",
               f"missing: {missing}")

    global_options = long_options(run([ctl, "--help"], env=base_env()).stdout.split("Output:")[0]
                                  .split("Options:")[1])
    option_words = words_in(sections.get("OPTIONS", []))
    missing = [f"--{o}" for o in global_options if f"--{o}" not in option_words]
    tap.ok(global_options and not missing, "aerosyncctl.1 documents the global options",
           f"options {global_options}, missing: {missing}")

    exit_tags = man_tagged(sections.get("EXIT STATUS", []))
    missing = [code for code in help_json["exit_codes"] if code not in exit_tags]
    tap.ok(not missing, "aerosyncctl.1 documents every exit status", f"missing: {missing}")

    help_text = run([ctl, "--help"], env=base_env()).stdout
    variables = re.findall(r"^  ([A-Z][A-Z_]+)  ", help_text.split("Environment:")[1], re.M)
    env_words = words_in(sections.get("ENVIRONMENT", []))
    missing = [v for v in variables if v not in env_words]
    tap.ok(variables and not missing, "aerosyncctl.1 documents the environment of --help",
           f"variables {variables}, missing: {missing}")


def check_option_page(tap, man_dir, page, program):
    text = render_man(os.path.join(man_dir, page))
    sections = man_sections(text)
    options = long_options(run([program, "--help-all"], env=base_env()).stdout)
    words = words_in(sections.get("OPTIONS", []))
    missing = [f"--{o}" for o in options if f"--{o}" not in words]
    tap.ok(options and not missing, f"{page} documents every option of --help-all",
           f"options {options}, missing: {missing}")
    return sections


def known_keys(source_root, path, array):
    """the configuration keys in a C array of known keys such as as_config_known_keys[]"""
    with open(os.path.join(source_root, path), encoding="utf-8") as f:
        m = re.search(re.escape(array) + r"\[\]\s*=\s*\{(.*?)\};", f.read(), re.S)
    return re.findall(r'"([\w-]+)"', m.group(1)) if m else []


def check_daemon_page(tap, man_dir, daemon, source_root):
    sections = check_option_page(tap, man_dir, "aerosyncd.1", daemon)
    words = words_in(sections.get("CONFIGURATION", []))
    for what, path, array in (("[daemon]", "src/daemon/as-config.c", "as_config_known_keys"),
                              ("[route NAME]", "src/core/as-router.c", "known")):
        keys = known_keys(source_root, path, array)
        missing = [k for k in keys if k not in words]
        tap.ok(keys and not missing, f"aerosyncd.1 documents every {what} key",
               f"keys of {array} in {path}: {keys}, missing: {missing}")
    files = " ".join(" ".join(sections.get("FILES", [])).split())
    for path in ("aerosync/aerosyncd.conf", "aerosync/tokens", "aerosync/history.jsonl",
                 ".aerosync/"):
        tap.ok(path in files, f"aerosyncd.1 names {path} in FILES", files)
    examples = " ".join(sections.get("EXAMPLES", []))
    tap.ok("curl" in examples and "token generate" in examples,
           "aerosyncd.1 has curl and token examples", examples)


# prints what the completion offers for the words given as arguments, the last being the one
# under the cursor; "=" is its own word, as bash splits at COMP_WORDBREAKS
COMPLETION_DRIVER = r"""
source "$1" || exit 1
shift
spec=$(complete -p aerosyncctl) || exit 1
func=${spec#*-F }
func=${func%% *}
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$func" aerosyncctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def complete(script, words, cwd=None):
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", COMPLETION_DRIVER, "driver",
                           script, "aerosyncctl", *words],
                          capture_output=True, text=True, cwd=cwd, timeout=COMMAND_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"completing {words} failed: {proc.stderr}")
    return [w for w in proc.stdout.split("\n") if w]


def check_completion(tap, script, help_json, tmpdir):
    if shutil.which("bash") is None:
        tap.skip("bash completion", "bash is not installed")
        return
    proc = run(["bash", "--norc", "--noprofile", "-c",
                'source "$1" && complete -p aerosyncctl', "check", script], check=False)
    tap.ok(proc.returncode == 0 and re.match(r"complete -F \S+ aerosyncctl$", proc.stdout.strip()),
           "the completion registers a function for aerosyncctl", proc.stdout + proc.stderr)

    offered = complete(script, ["to"])
    tap.ok("token" in offered, "'aerosyncctl to' completes to token", offered)

    for verb in help_json["verbs"]:
        name = verb["name"]
        words = name.split()
        # each word of the verb, typed after the previous ones: from its first letter, and
        # after 'help'
        missing = []
        for i, word in enumerate(words):
            for prefix in ([], ["help"]):
                line = prefix + words[:i] + [word[0]]
                if word not in complete(script, line):
                    missing.append(" ".join(line))
        tap.ok(not missing, f"the completion offers the verb '{name}'",
               f"not offered after: {missing}")
        for spelling in [name] + verb["aliases"]:
            offered = complete(script, spelling.split() + ["--"])
            missing = [f"--{o}" for o in verb["options"] + ["json"] if f"--{o}" not in offered]
            tap.ok(not missing, f"the completion offers the options of '{spelling}'",
                   f"offered {offered}, missing: {missing}")

    offered = complete(script, ["token", "generate", "--expires", ""])
    tap.ok("never" in offered and "7d" in offered, "the completion offers --expires values",
           offered)
    offered = complete(script, ["token", "generate", "--expires", "=", "ne"])
    tap.ok(offered == ["never"], "the completion offers --expires=VALUE", offered)
    offered = complete(script, ["--json", "token", "generate", "--label", "x", "--ex"])
    tap.ok(offered == ["--expires"], "the completion skips options and their values", offered)
    offered = complete(script, ["status", ""])
    tap.ok(offered == [], "the completion offers nothing after a verb without arguments",
           offered)
    offered = complete(script, ["send", "--protocol", ""])
    tap.ok(sorted(offered) == ["auto", "http", "https", "quic"],
           "the completion offers --protocol values", offered)
    offered = complete(script, ["watch", "--format", ""])
    tap.ok(sorted(offered) == ["json", "pretty"], "the completion offers --format values",
           offered)

    # local paths: what send sends, --token-file and --save-to
    cwd = os.path.join(tmpdir, "completion")
    os.makedirs(os.path.join(cwd, "Photos"))
    for name in ("report.pdf", "receiver.token"):
        with open(os.path.join(cwd, name), "w", encoding="utf-8") as f:
            f.write("x")
    offered = complete(script, ["send", "-r", "--token-file", "receiver.token", "re"], cwd)
    tap.ok(sorted(offered) == ["receiver.token", "report.pdf"],
           "the completion offers files to send", offered)
    offered = complete(script, ["send", "--token-file", "rec"], cwd)
    tap.ok(offered == ["receiver.token"], "the completion offers files for --token-file",
           offered)
    offered = complete(script, ["receive", "--save-to", ""], cwd)
    tap.ok(offered == ["Photos"], "the completion offers directories for --save-to", offered)


def parse_statistics(stderr):
    """(translated, fuzzy, untranslated) from msgfmt --statistics"""
    counts = {}
    for kind in ("translated", "fuzzy", "untranslated"):
        m = re.search(r"(\d+) " + kind, stderr)
        counts[kind] = int(m.group(1)) if m else 0
    return counts["translated"], counts["fuzzy"], counts["untranslated"]


def check_catalogue(tap, source_root, tmpdir):
    po_dir = os.path.join(source_root, "po")
    po = os.path.join(po_dir, "zh_CN.po")
    with open(os.path.join(po_dir, "LINGUAS"), encoding="utf-8") as f:
        linguas = [w for line in f for w in line.split("#")[0].split()]
    tap.ok("zh_CN" in linguas, "po/LINGUAS lists zh_CN", linguas)

    proc = run(["msgfmt", "--check", "--statistics", "-o", os.devnull, po], check=False)
    translated, fuzzy, untranslated = parse_statistics(proc.stderr)
    tap.ok(proc.returncode == 0 and translated > 0 and fuzzy == 0 and untranslated == 0,
           "msgfmt --check: po/zh_CN.po is complete", proc.stderr)

    with open(os.path.join(po_dir, "POTFILES.in"), encoding="utf-8") as f:
        sources = [line.strip() for line in f if line.strip() and not line.startswith("#")]

    # a file with marked strings that POTFILES.in forgets is never translated
    marked = []
    for top in ("src", "data"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(source_root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if name.endswith(".c"):
                    with open(path, encoding="utf-8") as f:
                        if not re.search(r"\b(?:N?_|ngettext)\(\s*\"", f.read()):
                            continue
                elif not name.endswith(".desktop.in"):
                    continue
                marked.append(os.path.relpath(path, source_root))
    missing = [path for path in marked if path not in sources]
    tap.ok(marked and not missing, "po/POTFILES.in lists every file with translatable strings",
           f"missing: {missing}")

    # the catalogue as 'ninja aerosync-pot' would make it now: new strings must be translated
    pot = os.path.join(tmpdir, "aerosync.pot")
    run(["xgettext", *XGETTEXT_ARGS, "--directory", source_root, "--output", pot, *sources])
    merged = os.path.join(tmpdir, "zh_CN.po")
    run(["msgmerge", "--quiet", "--no-fuzzy-matching", "--output-file", merged, po, pot])
    proc = run(["msgfmt", "--check", "--statistics", "-o", os.devnull, merged], check=False)
    translated, fuzzy, untranslated = parse_statistics(proc.stderr)
    todo = run(["msgattrib", "--untranslated", "--no-obsolete", merged]).stdout
    todo += run(["msgattrib", "--only-fuzzy", "--no-obsolete", merged]).stdout
    # the msgids to translate, without the header's empty one
    msgids = [m for m in re.findall(r'^msgid ".*"\n(?:".*"\n)*', todo, re.M) if m != 'msgid ""\n']
    tap.ok(proc.returncode == 0 and translated > 0 and fuzzy == 0 and untranslated == 0,
           "every string of POTFILES.in is translated to zh_CN", proc.stderr + "".join(msgids))


def check_translated_output(tap, ctl, notifier, mo_file, tmpdir):
    if not tap.ok(os.path.isfile(mo_file), "the build made the zh_CN catalogue", mo_file):
        return
    localedir = os.path.join(tmpdir, "locale")
    os.makedirs(os.path.join(localedir, "zh_CN", "LC_MESSAGES"))
    shutil.copy(mo_file, os.path.join(localedir, "zh_CN", "LC_MESSAGES", "aerosync.mo"))

    english = run([ctl, "--help"], env=dict(base_env(), AEROSYNC_LOCALEDIR=localedir)).stdout
    tap.ok(EN_USAGE in english and ZH_USAGE not in english,
           "aerosyncctl --help is in English without LANGUAGE", english)

    env = dict(base_env(), LANGUAGE="zh_CN", AEROSYNC_LOCALEDIR=localedir)
    chinese = run([ctl, "--help"], env=env).stdout
    tap.ok(ZH_USAGE in chinese and EN_USAGE not in chinese,
           "LANGUAGE=zh_CN aerosyncctl --help is in Chinese", chinese)
    chinese = run([ctl, "help", "token", "generate"], env=env).stdout
    tap.ok(ZH_TOKEN_GENERATE in chinese and EN_TOKEN_GENERATE not in chinese,
           "LANGUAGE=zh_CN aerosyncctl help token generate is in Chinese", chinese)
    proc = run([ctl, "no-such-verb"], env=env, check=False)
    tap.ok(proc.returncode == 2 and "未知动词" in proc.stderr,
           "LANGUAGE=zh_CN: aerosyncctl's errors are in Chinese", proc.stderr)

    if notifier is None:
        tap.skip("LANGUAGE=zh_CN aerosync-notifier --help is in Chinese", "no notifier built")
        return
    english = run([notifier, "--help"], env=dict(base_env(), AEROSYNC_LOCALEDIR=localedir))
    chinese = run([notifier, "--help"], env=env)
    summary = [line for line in english.stdout.splitlines() if "aerosyncd" in line]
    tap.ok(summary and summary[0] not in chinese.stdout and "aerosyncd" in chinese.stdout,
           "LANGUAGE=zh_CN aerosync-notifier --help is in Chinese", chinese.stdout)


def main():
    tap = Tap()
    ctl = os.environ["AEROSYNCCTL_PATH"]
    daemon = os.environ["AEROSYNCD_PATH"]
    notifier = os.environ.get("AEROSYNC_NOTIFIER_PATH") or None
    man_dir = os.environ["AS_MAN_DIR"]
    source_root = os.environ["AS_SOURCE_ROOT"]
    mo_file = os.environ["AS_MO_FILE"]
    help_json = json.loads(run([ctl, "help", "--json"], env=base_env()).stdout)

    with tempfile.TemporaryDirectory(prefix="as-doc-test-") as tmpdir:
        if check_man_warnings(tap, man_dir):
            check_ctl_page(tap, man_dir, ctl, help_json)
            check_daemon_page(tap, man_dir, daemon, source_root)
            if notifier is not None:
                check_option_page(tap, man_dir, "aerosync-notifier.1", notifier)
            else:
                tap.skip("aerosync-notifier.1 documents every option", "no notifier built")
        check_completion(tap, os.path.join(source_root, "data", "completions", "aerosyncctl"),
                         help_json, tmpdir)
        check_catalogue(tap, source_root, tmpdir)
        check_translated_output(tap, ctl, notifier, mo_file, tmpdir)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
