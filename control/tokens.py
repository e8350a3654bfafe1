"""Creates API tokens: ``python -m control.tokens --name ci --role operate``.

Prints the token once (give it to its user) and the entry to add to the tokens file
(``SCHEDULER_TOKENS_FILE``) or to the ``SCHEDULER_TOKENS`` JSON list. Only the digest is
ever stored; a lost token is replaced, not recovered.
"""

from control.auth import Role, digest, new_token

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control.tokens", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="who or what uses it; shown in the audit trail")
    parser.add_argument("--role", required=True, choices=[role.name for role in Role])
    args = parser.parse_args(argv)
    token = new_token()
    entry = {"name": args.name, "role": args.role, "digest": digest(token)}
    sys.stdout.write(f"token (shown once): {token}\n")
    sys.stdout.write(f"entry for the tokens file: {json.dumps(entry)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
