"""Build the Windows installer: PyInstaller bundle → (sign the .exe files) → Inno Setup → (sign setup).

    py -3.11 -m venv .venv && .venv\\Scripts\\pip install -e ".[offline,package]"
    .venv\\Scripts\\python packaging\\windows\\build.py            # → dist\\windows\\CaptionOverlay-<ver>-setup.exe

Needs Inno Setup 6 (ISCC.exe on PATH or in its default folder; ``winget install JRSoftware.InnoSetup``
or ``choco install innosetup``). Signing runs only when credentials are in the environment, never
otherwise. Since June 2023 code-signing keys must live in hardware or a cloud HSM, so the realistic
choices are:

    Azure Trusted Signing (Artifact Signing): signtool with Microsoft's dlib; Azure credentials come
    from the environment (AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET, or a prior
    `az login`):
    AZURE_SIGNING_ENDPOINT      e.g. https://eus.codesigning.azure.net
    AZURE_SIGNING_ACCOUNT       the Trusted Signing account name
    AZURE_SIGNING_PROFILE       its certificate profile name
    AZURE_SIGNING_DLIB          path to Azure.CodeSigning.Dlib.dll (Microsoft.Trusted.Signing.Client)

    a certificate in the user's store, e.g. on a USB token:
    WINDOWS_SIGN_THUMBPRINT     SHA-1 thumbprint

    a .pfx file (only older, exportable certificates):
    WINDOWS_SIGN_PFX + WINDOWS_SIGN_PFX_PASSWORD

    WINDOWS_SIGN_TIMESTAMP_URL  RFC 3161 timestamp server (default below; Azure's for Azure)
    SIGNTOOL                    path to signtool.exe (default: found on PATH / in the Windows SDK)

SignPath (free for open source) signs on its own servers instead: the release workflow uploads
the unsigned setup and downloads the signed one; see the README's installers section.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from build_steps import BuildError, failure_text  # noqa: E402,F401
from identity import read_identity  # noqa: E402

DEFAULT_TIMESTAMP_URL = "http://timestamp.digicert.com"
AZURE_TIMESTAMP_URL = "http://timestamp.acs.microsoft.com"
AZURE_VARS = ("AZURE_SIGNING_ENDPOINT", "AZURE_SIGNING_ACCOUNT", "AZURE_SIGNING_PROFILE", "AZURE_SIGNING_DLIB")
ISCC_FOLDERS = (r"C:\Program Files (x86)\Inno Setup 6", r"C:\Program Files\Inno Setup 6")


def signing_command(env: dict[str, str] | None = None, metadata_dir: Path | None = None) -> list[str] | None:
    """signtool arguments (without the file) when signing credentials are present, else None."""
    env = os.environ if env is None else env
    pfx, thumbprint = env.get("WINDOWS_SIGN_PFX"), env.get("WINDOWS_SIGN_THUMBPRINT")
    azure = {k: env.get(k, "") for k in AZURE_VARS}
    if any(azure.values()) and not all(azure.values()):
        missing = [k for k, v in azure.items() if not v]
        raise BuildError(f"incomplete Azure Trusted Signing settings: {', '.join(missing)} not set")
    if not pfx and not thumbprint and not all(azure.values()):
        return None
    signtool = env.get("SIGNTOOL") or shutil.which("signtool") or _sdk_signtool()
    if not signtool:
        raise BuildError("signing credentials are set but signtool.exe was not found (set SIGNTOOL)")
    default_ts = AZURE_TIMESTAMP_URL if all(azure.values()) else DEFAULT_TIMESTAMP_URL
    cmd = [signtool, "sign", "/fd", "sha256", "/td", "sha256",
           "/tr", env.get("WINDOWS_SIGN_TIMESTAMP_URL", default_ts)]
    if all(azure.values()):
        if not Path(azure["AZURE_SIGNING_DLIB"]).is_file():
            raise BuildError(f"AZURE_SIGNING_DLIB points to {azure['AZURE_SIGNING_DLIB']}, which does not exist")
        folder = Path(metadata_dir or tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        metadata = folder / "trusted-signing-metadata.json"
        metadata.write_text(json.dumps({"Endpoint": azure["AZURE_SIGNING_ENDPOINT"],
                                        "CodeSigningAccountName": azure["AZURE_SIGNING_ACCOUNT"],
                                        "CertificateProfileName": azure["AZURE_SIGNING_PROFILE"]}),
                            encoding="utf-8")
        cmd += ["/dlib", azure["AZURE_SIGNING_DLIB"], "/dmdf", str(metadata)]
    elif pfx:
        if not Path(pfx).is_file():
            raise BuildError(f"WINDOWS_SIGN_PFX points to {pfx}, which does not exist")
        cmd += ["/f", pfx]
        if env.get("WINDOWS_SIGN_PFX_PASSWORD"):
            cmd += ["/p", env["WINDOWS_SIGN_PFX_PASSWORD"]]
    else:
        cmd += ["/sha1", thumbprint]
    return cmd


def _sdk_signtool() -> str | None:
    found = sorted(glob.glob(r"C:\Program Files (x86)\Windows Kits\10\bin\*\x64\signtool.exe"))
    return found[-1] if found else None


def _redacted(cmd: list[str]) -> str:
    out, hide = [], False
    for part in cmd:
        out.append("***" if hide else part)
        hide = part == "/p"
    return " ".join(f'"{p}"' if " " in p else p for p in out)


def sign(files: list[Path], cmd: list[str] | None) -> None:
    if cmd is None:
        print("signing skipped: no AZURE_SIGNING_*, WINDOWS_SIGN_THUMBPRINT or WINDOWS_SIGN_PFX "
              "in the environment")
        return
    for path in files:
        print("+ " + _redacted([*cmd, str(path)]))
        subprocess.run([*cmd, str(path)], check=True)


def find_iscc() -> str:
    found = shutil.which("ISCC") or shutil.which("iscc")
    if found:
        return found
    for folder in ISCC_FOLDERS:
        candidate = Path(folder) / "ISCC.exe"
        if candidate.is_file():
            return str(candidate)
    raise BuildError("Inno Setup 6 (ISCC.exe) not found: install it (winget install JRSoftware.InnoSetup)")


def iscc_arguments(ident: dict, bundle: Path, out: Path, sign_cmd: list[str] | None) -> list[str]:
    """The /D defines caption-overlay.iss expects, all from app/__init__.py."""
    quad = ".".join(str(p) for p in ident["version_tuple"])
    args = [f"/DAppName={ident['APP_NAME']}", f"/DAppVersion={ident['__version__']}",
            f"/DAppVersionQuad={quad}", f"/DAppExe={ident['APP_ID']}.exe",
            f"/DAppDataDir={ident['APP_ID']}", f"/DAppPublisher={ident['ORG_NAME']}",
            f"/DAppURL=https://{ident['ORG_DOMAIN']}", f"/DSourceDir={bundle}", f"/DOutputDir={out}"]
    if sign_cmd is not None:
        # Inno calls this for the uninstaller it embeds ($f is the file). It calls back into this
        # script, which reads the credentials from the environment, so no password is ever on a
        # command line that ISCC echoes into the build log.
        callback = [sys.executable, str(Path(__file__).resolve()), "--sign-file"]
        args += ["/DSignTool=1", "/S" + inno_sign_tool("signcmd", callback)]
    return args


def inno_sign_tool(name: str, command: list[str]) -> str:
    """ISCC's ``/S<name>=<command>`` value. Quotes inside a /S value do not survive ISCC's own
    command-line parsing, so every part is wrapped in ``$q`` (Inno puts a quote there); ``$f``
    is the file to sign, which Inno quotes itself. Paths with spaces then stay whole."""
    return f"{name}=" + " ".join(f"$q{part}$q" for part in command) + " $f"
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Windows installer.")
    parser.add_argument("--bundle", type=Path, help="use this PyInstaller dist folder instead of building")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "windows")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "windows")
    parser.add_argument("--sign-file", type=Path, help=argparse.SUPPRESS)  # Inno's SignTool callback
    args = parser.parse_args(argv)
    if args.sign_file:
        try:
            sign([args.sign_file], signing_command())
        except (BuildError, subprocess.CalledProcessError, OSError) as exc:
            print(f"signing failed: {failure_text(exc)}", file=sys.stderr)
            return 1
        return 0
    if sys.platform != "win32":
        print("build.py makes the Windows installer; run it on Windows", file=sys.stderr)
        return 2
    ident = read_identity()
    try:
        sign_cmd = signing_command()
        bundle = args.bundle
        if bundle is None:
            subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
                            "--distpath", str(args.work / "dist"), "--workpath", str(args.work / "pyinstaller"),
                            str(ROOT / "build.spec")], check=True)
            bundle = args.work / "dist" / ident["APP_ID"]
        exes = [bundle / f"{ident['APP_ID']}.exe", bundle / f"{ident['APP_ID']}-cli.exe"]
        for exe in exes:
            if not exe.is_file():
                raise BuildError(f"{exe} is missing: the bundle is incomplete")
        # Sign the programs before Inno packs them, then the setup itself.
        sign(exes, sign_cmd)
        args.out.mkdir(parents=True, exist_ok=True)
        subprocess.run([find_iscc(), *iscc_arguments(ident, bundle.resolve(), args.out.resolve(), sign_cmd),
                        str(HERE / "caption-overlay.iss")], check=True)
        setup = args.out / f"CaptionOverlay-{ident['__version__']}-setup.exe"
        sign([setup], sign_cmd)
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        print(f"build failed: {failure_text(exc)}", file=sys.stderr)
        return 1
    print(f"{setup}  {setup.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
