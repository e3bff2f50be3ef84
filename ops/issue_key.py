"""Issue an API key for one ISPB: print the key once and store only its SHA-256 hash.

    python -m ops.issue_key 12345678

The table is PIX_TABLE_NAME (default pix-stream) in the AWS account and region of the
current credentials; AWS_ENDPOINT_URL_DYNAMODB points it at DynamoDB Local instead.
"""

import argparse
import sys

from chalicelib.auth import issue_key
from chalicelib.errors import InvalidIspb
from chalicelib.runtime import build_runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Issue an API key bound to one ISPB; the key is printed once, "
        "and the table stores only its SHA-256 hash."
    )
    parser.add_argument("ispb", help="the 8-digit ISPB the key grants access to")
    args = parser.parse_args(argv)
    store = build_runtime().store
    try:
        key = issue_key(store, args.ispb)
    except InvalidIspb as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"Stored the SHA-256 hash of this key for ISPB {args.ispb} in table {store.table_name}. "
        "The key itself is not stored: keep it now.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
