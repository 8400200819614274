#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A third-party WebSocket client for the aerosyncd event stream (python3-websockets).
#
# Prints "OPEN" once subscribed, then every text message on its own line, and exits:
#   0  after --count messages, or after a "completed" event for --until-filename
#   2  on --timeout
#   3  when the handshake is refused ("REFUSED <status>" is printed first)
#   4  when the server closed the stream

import argparse
import asyncio
import json
import sys

import websockets


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="ws://host:port/ws")
    parser.add_argument("--token", help="sent as 'Authorization: Bearer TOKEN'")
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages")
    parser.add_argument("--timeout", type=float, default=20.0, help="give up after this many seconds")
    parser.add_argument("--until-filename", help="exit after the 'completed' event of this file")
    return parser.parse_args()


def is_stop_event(text, filename):
    if filename is None:
        return False
    try:
        event = json.loads(text)
    except ValueError:
        return False
    return event.get("event") == "completed" and event.get("filename") == filename


async def listen(args):
    headers = {}
    if args.token:
        headers["Authorization"] = "Bearer " + args.token
    try:
        # a refused handshake leaves the HTTP connection open: do not wait 10 s for it to close
        try:
            conn = await websockets.connect(
                args.url, extra_headers=headers, open_timeout=args.timeout, close_timeout=1
            )
        except OSError:
            # a socket-level failure on a loaded machine: one more try, then report it
            await asyncio.sleep(0.5)
            conn = await websockets.connect(
                args.url, extra_headers=headers, open_timeout=args.timeout, close_timeout=1
            )
    except websockets.exceptions.InvalidStatusCode as exc:
        print("REFUSED %d" % exc.status_code, flush=True)
        return 3
    except websockets.exceptions.InvalidHandshake as exc:
        print("REFUSED 0 %s" % exc, flush=True)
        return 3
    print("OPEN", flush=True)
    seen = 0
    try:
        while True:
            try:
                text = await conn.recv()
            except websockets.exceptions.ConnectionClosed:
                return 4
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            print(text.replace("\n", " "), flush=True)
            seen += 1
            if args.count > 0 and seen >= args.count:
                return 0
            if is_stop_event(text, args.until_filename):
                return 0
    finally:
        await conn.close()


async def main():
    args = parse_args()
    try:
        return await asyncio.wait_for(listen(args), timeout=args.timeout)
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
        return 2
    except Exception as exc:  # pylint: disable=broad-except
        # on stdout, so the test's assertion shows why instead of an empty line
        print("ERROR %s: %s" % (type(exc).__name__, exc), flush=True)
        return 5


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
