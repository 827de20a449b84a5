#!/usr/bin/python3
"""A mail sink for the kcps-server tests: a real SMTP server (aiosmtpd) on
127.0.0.1 and a free port, storing each message it accepts as N.eml (the
data as received) and N.env (envelope and TLS state) in a folder.

Prints "ready PORT" once listening; exits when its stdin closes (the test
that started it is gone) or on SIGTERM.

  sink.py --dir DIR [--refuse] [--cert FILE --key FILE]

--refuse answers every RCPT TO with 550 (a relay that refuses);
--cert/--key offer STARTTLS with that certificate.
"""
import argparse
import asyncio
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, folder, refuse):
        self.folder = folder
        self.refuse = refuse
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.7.1 relaying refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.folder, str(self.count))
        env = "from: %s\nto: %s\ntls: %s\n" % (
            envelope.mail_from, " ".join(envelope.rcpt_tos),
            "yes" if session.ssl is not None else "no")
        # Written beside and renamed: a reader never sees half a message.
        for ext, data in ((".env", env.encode()), (".eml", envelope.original_content)):
            with open(base + ext + ".tmp", "wb") as f:
                f.write(data)
            os.rename(base + ext + ".tmp", base + ext)
        return "250 2.0.0 stored"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--refuse", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    loop = asyncio.get_running_loop()
    handler = Sink(args.dir, args.refuse)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.test", tls_context=tls, loop=loop),
        "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    done = loop.create_future()

    def stop(*_):
        if not done.done():
            done.set_result(None)

    def on_stdin():
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    print("ready %d" % port, flush=True)
    await done
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
