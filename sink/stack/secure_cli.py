"""``warp-sink stack {up,down,env,status} --secure``: the secured stack from a shell.

``env`` prints the sink's variables for SASL_SSL with SCRAM-SHA-512 and the password role
(``WARP_SECURE_KAFKA_STYLE`` / ``WARP_SECURE_PG_STYLE`` choose another style), and as
comments the other listeners and the ACLs the sink's principal holds."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from sink.stack.process import StackError
from sink.stack.secure import (
    DEFAULT_DLQ,
    DLQ_PREFIX,
    GROUP_PREFIX,
    KAFKA_STYLES,
    PG_STYLES,
    TOPIC_PREFIX,
    SecureStack,
    SecureStackInfo,
)


def _print_env(info: SecureStackInfo) -> None:
    kafka = os.environ.get("WARP_SECURE_KAFKA_STYLE", "scram-sha-512")
    pg = os.environ.get("WARP_SECURE_PG_STYLE", "password")
    if kafka not in KAFKA_STYLES or pg not in PG_STYLES:
        raise StackError(f"WARP_SECURE_KAFKA_STYLE must be one of {', '.join(KAFKA_STYLES)} "
                         f"and WARP_SECURE_PG_STYLE one of {', '.join(PG_STYLES)}")
    print(f"# kafka SASL_SSL {info.sasl_ssl} (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), SSL "
          f"{info.ssl} (client certificate), SASL_PLAINTEXT {info.sasl_plaintext}")
    print(f"# postgresql 127.0.0.1:{info.pg_port}, TLS only: role warp (scram-sha-256), role "
          "warp_cert (client certificate)")
    print(f"# ACLs of User:warp: read topics {TOPIC_PREFIX}*, groups {GROUP_PREFIX}*; write "
          f"topics {DLQ_PREFIX}* (create them as the admin: secrets in {info.root})")
    values = {**info.env(kafka, pg), "WARP__SOURCE__GROUP_ID": GROUP_PREFIX,
              "WARP__ERRORS__DLQ_TOPIC": DEFAULT_DLQ}
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")


def secure_main(command: str, root: Path | None, purge: bool) -> int:
    stack = SecureStack(root or Path(os.environ.get("WARP_SECURE_STACK_DIR")
                                     or ".warp/secure-stack"))
    try:
        if command == "up":
            info = stack.up()
            print(f"# secured stack in {stack.root}: kafka pid {info.kafka_pid}, "
                  f"postgresql pid {info.pg_pid}")
            _print_env(info)
        elif command == "down":
            stack.down(purge=purge)
            print(f"# secured stack in {stack.root} stopped")
        else:
            known = stack.info()
            if known is None:
                print(f"warp-sink stack: no secured stack is up in {stack.root}",
                      file=sys.stderr)
                return 1
            pg_ok, kafka_ok = stack.status()
            if command == "status":
                print(f"kafka       {known.sasl_ssl} {'up' if kafka_ok else 'DOWN'}")
                print(f"postgresql  127.0.0.1:{known.pg_port} {'up' if pg_ok else 'DOWN'}")
            elif pg_ok and kafka_ok:
                _print_env(known)
            else:
                print(f"warp-sink stack: the secured stack in {stack.root} is not answering",
                      file=sys.stderr)
            return 0 if pg_ok and kafka_ok else 1
    except (StackError, OSError, subprocess.SubprocessError) as exc:
        print(f"warp-sink stack: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0
