"""`make package`: one CloudFormation (SAM) template for the whole service, built offline.

`chalice package` writes the API, the functions and their roles; the templates in infra/ add
the DynamoDB table and wire the functions to it. Chalice takes a single `--merge-template`,
so this module first merges infra/table.json and infra/functions.json into one, with the
same deep merge that Chalice applies (later files win).

Packaging needs no AWS account. Chalice runs with a region and placeholder credentials, and
with settings that keep botocore from looking for credentials anywhere else.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalice.package import TemplateDeepMerger

from localdev.schema import PROJECT_DIR

MERGE_SOURCES = (PROJECT_DIR / "infra" / "table.json", PROJECT_DIR / "infra" / "functions.json")
DEFAULT_STAGE = "prod"
DEFAULT_OUT_DIR = PROJECT_DIR / "build" / "package"
TEMPLATE_NAME = "sam.json"
PACKAGING_REGION = "us-east-1"

# Variables that could make botocore reach for a real account or the instance metadata
# service while Chalice builds its session.
_CREDENTIAL_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def merge_templates(paths: Sequence[Path] = MERGE_SOURCES) -> dict[str, Any]:
    """Deep-merge JSON templates; a value in a later file replaces the same key's earlier one."""
    merger = TemplateDeepMerger()
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merger.merge(json.loads(path.read_text()), merged)
    return merged


def offline_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Return `environ` with a region and placeholder credentials, and no real ones."""
    env = {k: v for k, v in environ.items() if k not in _CREDENTIAL_VARIABLES}
    env["AWS_DEFAULT_REGION"] = env.get("AWS_DEFAULT_REGION") or PACKAGING_REGION
    env["AWS_ACCESS_KEY_ID"] = "packaging-only"
    env["AWS_SECRET_ACCESS_KEY"] = "packaging-only"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    # An empty file keeps ~/.aws/config and ~/.aws/credentials out of the session.
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def package(stage: str = DEFAULT_STAGE, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    """Write the deployment zip and the merged template to `out_dir`; return the template."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    merge_path = out_dir.parent / f"merge-template-{stage}.json"
    merge_path.write_text(json.dumps(merge_templates(), indent=2) + "\n")
    chalice = Path(sys.executable).parent / "chalice"
    command = [
        str(chalice),
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(merge_path),
        str(out_dir),
    ]
    subprocess.run(command, cwd=PROJECT_DIR, env=offline_environment(os.environ), check=True)
    return out_dir / TEMPLATE_NAME


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the CloudFormation template offline.")
    parser.add_argument("--stage", default=DEFAULT_STAGE, help="Chalice stage to package")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT_DIR, help="directory for sam.json and the zip"
    )
    args = parser.parse_args(argv)
    template = package(args.stage, args.out)
    print(f"wrote {template}")


if __name__ == "__main__":
    main()
