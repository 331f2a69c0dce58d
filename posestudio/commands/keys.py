"""``posestudio keys``: the studio's CURVE keys, so that only nodes it issued a key to can publish or control."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = """example:
  posestudio keys --out studio_keys --nodes cam01 cam02 cam03 cam04
  posestudio keys --out studio_keys --nodes cam05            (adds a node; the server keypair is kept)

Writes (secret files mode 0600):
  DIR/server.key, DIR/server.key_secret    the server's keypair (the secret stays on the server)
  DIR/nodes/NAME.key, NAME.key_secret      each node's keypair (copy to that node with server.key)
  DIR/authorized/NAME.key                  the node public keys the server accepts (delete one to revoke)

The server and the nodes use the keys with --keys DIR; outside loopback they refuse to start without
keys unless --insecure is given (docs/live_studio.md, "Security (CURVE keys)")."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``keys`` subcommand."""
    p = sub.add_parser("keys", help="make the studio's CURVE keys (server keypair, one keypair per node)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="the keys folder (created when absent)")
    p.add_argument("--nodes", nargs="+", required=True, metavar="NAME",
                   help="the nodes to issue keys to (camera names: letters, digits, '.', '_', '-')")
    p.add_argument("--force", action="store_true", help="replace keys of nodes that already have some")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: other commands' start-up does not need ZeroMQ
    from posestudio.capture.keys import write_studio_keys

    result = write_studio_keys(args.out, list(args.nodes), force=args.force)
    if result["kept"]:
        print(f"kept the server keypair in {args.out} (new node keys are accepted by the same server)")
    for path in result["written"]:
        print(f"wrote {path}{'  (secret, mode 0600)' if path.name.endswith('.key_secret') else ''}")
    print(f"copy {args.out / 'server.key'} and nodes/NAME.key_secret to each node; keep server.key_secret on the "
          "server only", flush=True)
    return 0
