"""Every step of .github/workflows/ci.yml and release.yml, runnable on a developer's machine too.

The workflows only check out the code, set up Python and call this script, so what a step does
is tested here (tests/packaging/test_ci_script.py) and not hidden in YAML.

    python packaging/ci.py test [PYTEST ARGS]  # the tests this OS can run (Linux: the README's command)
    python packaging/ci.py check-repository    # $GITHUB_REPOSITORY is app/__init__.py's REPOSITORY
    python packaging/ci.py check-tag v0.1.0    # the tag names the version in app/__init__.py
    python packaging/ci.py build-tools         # installers' tools: Inno Setup (Windows), signing dlib
    python packaging/ci.py build               # frozen app + this OS's installers → dist/<os>/
    python packaging/ci.py selftest            # frozen --self-test offscreen, then with the loopback server
    python packaging/ci.py checksums DIR       # DIR/SHA256SUMS over every installer in DIR
    python packaging/ci.py changelog VERSION   # that version's CHANGELOG.md section (release notes)
    python packaging/ci.py publish TAG DIR     # GitHub release with DIR's files (gh CLI, GH_TOKEN)

Add ``--dry-run`` before the step name to print the commands instead of running them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from identity import read_identity  # noqa: E402

# Markers of tests that need Linux's desktop stack (Xvfb + window manager, PulseAudio, Secret
# Service), the official SDK virtualenvs or a frozen Linux bundle. Windows and macOS run the rest:
# the unit tests and the offscreen Qt tests.
LINUX_ONLY_MARKERS = ("desktop", "pulse", "secret_service", "sdk", "packaging", "soak")
INSTALLER_PATTERNS = ("*.exe", "*.dmg", "*.deb", "*.tar.gz", "*.AppImage", "*.flatpak")
INNO_CHOCO_VERSION = "6.4.3"
TRUSTED_SIGNING_CLIENT = "Microsoft.Trusted.Signing.Client"
TRUSTED_SIGNING_VERSION = "1.0.86"


class StepError(Exception):
    pass


def os_key(platform: str | None = None) -> str:
    platform = platform or sys.platform
    if platform.startswith("win"):
        return "windows"
    if platform == "darwin":
        return "macos"
    return "linux"


class Runner:
    """Runs (or, dry, prints) commands; secrets never reach the printed line."""

    def __init__(self, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.commands: list[list[str]] = []

    def __call__(self, cmd: list, *, env: dict | None = None, check: bool = True,
                 **kw) -> subprocess.CompletedProcess:
        cmd = [str(c) for c in cmd]
        self.commands.append(cmd)
        print("+ " + subprocess.list2cmdline(cmd), flush=True)
        if self.dry_run:
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return subprocess.run(cmd, env=env, check=check, **kw)


# --- test ---------------------------------------------------------------------------------------

def test_command(platform: str, pytest_args: list[str]) -> list[str]:
    """Linux: exactly the README's test command. Elsewhere: pytest without the Linux-only markers."""
    if os_key(platform) == "linux":
        return ["bash", str(ROOT / "packaging" / "dev.sh"), "test", *pytest_args]
    expression = " and ".join(f"not {m}" for m in LINUX_ONLY_MARKERS)
    return [sys.executable, "-m", "pytest", "-m", expression, "-p", "no:cacheprovider", *pytest_args]


def step_test(run: Runner, args) -> int:
    if os_key() == "macos":
        run(["brew", "install", "portaudio"])       # PyAudio builds against it on macOS
    if os_key() != "linux":
        run([sys.executable, "-m", "pip", "install", "-q", "-e", ".[offline,test]"], cwd=ROOT)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = run(test_command(sys.platform, args.pytest_args), env=env, check=False, cwd=ROOT)
    return result.returncode


# --- tag ----------------------------------------------------------------------------------------

def check_tag(tag: str, version: str | None = None) -> str:
    """``v1.2.3`` (or ``refs/tags/v1.2.3``) → "1.2.3" when it is the version in app/__init__.py."""
    version = version or read_identity()["__version__"]
    name = tag.rsplit("/", 1)[-1]
    if not re.fullmatch(r"v\d+\.\d+\.\d+(?:[.-]?(?:a|b|rc)\d+)?", name):
        raise StepError(f"tag {name!r} is not a version tag like v{version}")
    if name[1:] != version:
        raise StepError(f"tag {name!r} does not match app/__init__.py's version {version}: "
                        "bump __version__ (and CHANGELOG.md) first")
    return version


# --- repository ---------------------------------------------------------------------------------

def check_repository(actual: str | None, expected: str | None = None) -> str:
    """The repository this run builds from must be the one the app's release URLs and update
    check name: a fork's installers would send their users to another project's releases."""
    expected = expected or read_identity()["REPOSITORY"]
    if not actual:
        raise StepError("GITHUB_REPOSITORY is not set: this step checks which repository a release "
                        "workflow runs in")
    if actual.strip().lower() != expected.lower():          # GitHub names ignore case
        raise StepError(f"this workflow runs in {actual.strip()!r}, but app/__init__.py's REPOSITORY is "
                        f"{expected!r}: its installers would check for updates and link releases "
                        "there. Set REPOSITORY to this repository before releasing from it")
    return expected


# --- build --------------------------------------------------------------------------------------

def build_commands(platform: str) -> list[list[str]]:
    py = sys.executable
    key = os_key(platform)
    if key == "linux":
        return [[py, str(HERE / "linux" / "build.py")]]
    if key == "windows":
        return [[py, str(HERE / "windows" / "build.py")]]
    return [[py, str(HERE / "macos" / "build.py")]]


def step_build_tools(run: Runner, args) -> int:
    """What the installers need beyond Python: Inno Setup on Windows, the Azure signing dlib."""
    key = os_key()
    if key == "windows":
        if not (shutil.which("ISCC") or Path(r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe").is_file()):
            run(["choco", "install", "innosetup", "--version", INNO_CHOCO_VERSION, "-y", "--no-progress"])
        if os.environ.get("AZURE_SIGNING_ENDPOINT"):
            folder = ROOT / "build" / "trusted-signing"
            run(["nuget", "install", TRUSTED_SIGNING_CLIENT, "-Version", TRUSTED_SIGNING_VERSION,
                 "-OutputDirectory", folder, "-NonInteractive"])
            dlib = folder / f"{TRUSTED_SIGNING_CLIENT}.{TRUSTED_SIGNING_VERSION}" / "bin" / "x64" / \
                "Azure.CodeSigning.Dlib.dll"
            export_env("AZURE_SIGNING_DLIB", str(dlib))
    elif key == "macos":
        run(["brew", "install", "portaudio"])
        if os.environ.get("MACOS_CERTIFICATE_P12"):
            import_macos_certificate(run)
    else:
        run(["bash", str(HERE / "dev.sh"), "deps"])
    # test: the self-test step runs the repository's loopback server (websockets).
    run([sys.executable, "-m", "pip", "install", "-q", "-e", ".[offline,package,test]"], cwd=ROOT)
    return 0


def export_env(name: str, value: str) -> None:
    """Pass a value to later workflow steps ($GITHUB_ENV), and to this process."""
    os.environ[name] = value
    target = os.environ.get("GITHUB_ENV")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(f"{name}={value}\n")


def import_macos_certificate(run: Runner) -> None:
    """The Developer ID certificate (base64 .p12 in a secret) into a throw-away keychain."""
    import base64
    import secrets
    work = Path(os.environ.get("RUNNER_TEMP", ROOT / "build"))
    work.mkdir(parents=True, exist_ok=True)
    p12 = work / "signing.p12"
    p12.write_bytes(base64.b64decode(os.environ["MACOS_CERTIFICATE_P12"]))
    keychain = work / "signing.keychain-db"
    password = secrets.token_hex(16)
    run(["security", "create-keychain", "-p", password, keychain])
    run(["security", "set-keychain-settings", "-lut", "21600", keychain])
    run(["security", "unlock-keychain", "-p", password, keychain])
    run(["security", "import", p12, "-P", os.environ.get("MACOS_CERTIFICATE_PASSWORD", ""), "-A",
         "-t", "cert", "-f", "pkcs12", "-k", keychain])
    run(["security", "set-key-partition-list", "-S", "apple-tool:,apple:", "-k", password, keychain])
    run(["security", "list-keychains", "-d", "user", "-s", keychain, "login.keychain-db"])
    p12.unlink()


def notary_key_file(env: dict, folder: Path) -> dict:
    """A secret holds the App Store Connect key's text; notarytool wants a file: write it (0600)."""
    text = env.get("MACOS_NOTARY_KEY", "")
    if not text.lstrip().startswith("-----BEGIN"):
        return env
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "AuthKey.p8"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text.strip() + "\n")
    return dict(env, MACOS_NOTARY_KEY=str(path))


def step_build(run: Runner, args) -> int:
    env = dict(os.environ)
    if os_key() == "macos":
        env = notary_key_file(env, Path(os.environ.get("RUNNER_TEMP", ROOT / "build")))
    for cmd in build_commands(sys.platform):
        run(cmd, cwd=ROOT, env=env)
    return 0


# --- self-test ------------------------------------------------------------------------------

def frozen_executable(platform: str, root: Path = ROOT) -> Path:
    """The bundle's console entry point as each OS's build leaves it."""
    ident = read_identity()
    key = os_key(platform)
    if key == "windows":
        return root / "build" / "windows" / "dist" / ident["APP_ID"] / f"{ident['APP_ID']}-cli.exe"
    if key == "macos":
        return root / "build" / "macos" / "dist" / f"{ident['APP_NAME']}.app" / "Contents" / "MacOS" / ident["APP_ID"]
    return root / "build" / "linux" / "dist" / ident["APP_ID"] / ident["APP_ID"]


SELFTEST_KEY = "ci-selftest-key"


def start_loopback_server(script_line: str) -> tuple[subprocess.Popen, str]:
    """The repository's AssemblyAI-compatible server on a free port: (process, base URL)."""
    script = ROOT / "build" / "selftest-script.txt"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(script_line + "\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback", "--port", "0", "--quiet",
                             "--api-key", SELFTEST_KEY, "--script", str(script)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"server on (http://\S+)", line)
        if match:
            return proc, match.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise StepError(f"the loopback server did not start: {proc.stderr.read().strip()}")


def step_selftest(run: Runner, args) -> int:
    exe = Path(args.exe) if args.exe else frozen_executable(sys.platform)
    if not args.exe and not exe.exists() and not run.dry_run:
        raise StepError(f"{exe} does not exist: run the build step first")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("ASSEMBLYAI_API_KEY", None)
    first = run([exe, "--self-test"], env=env, check=False)
    if first.returncode != 0:
        print("frozen self-test (offscreen) FAILED", file=sys.stderr)
        return first.returncode
    if run.dry_run:
        run([exe, "--self-test", "--server", "http://127.0.0.1:PORT"], env=env, check=False)
        return 0
    server, url = start_loopback_server("Captions are working on this computer.")
    try:
        second = run([exe, "--self-test", "--server", url], env=dict(env, ASSEMBLYAI_API_KEY=SELFTEST_KEY),
                     check=False)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    if second.returncode != 0:
        print("frozen self-test with the loopback server FAILED", file=sys.stderr)
    return second.returncode


# --- release files ------------------------------------------------------------------------------

def installers(folder: Path) -> list[Path]:
    found = {p for pattern in INSTALLER_PATTERNS for p in folder.rglob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.name)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path) -> Path:
    """``SHA256SUMS`` in ``sha256sum -c`` format; names are unique across the OS folders."""
    files = installers(folder)
    if not files:
        raise StepError(f"no installers under {folder}")
    names = [p.name for p in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StepError(f"two installers share a name: {', '.join(duplicates)}")
    out = folder / "SHA256SUMS"
    out.write_text("".join(f"{sha256(p)}  {p.name}\n" for p in files), encoding="utf-8")
    return out


def changelog_section(version: str, text: str) -> str:
    """The body under ``## [version]`` (or ``## version``) up to the next ``## `` heading."""
    lines = text.splitlines()
    heading = re.compile(rf"^##\s+\[?v?{re.escape(version)}\]?(?:\s|$)")
    for i, line in enumerate(lines):
        if heading.match(line):
            body = []
            for later in lines[i + 1:]:
                if later.startswith("## "):
                    break
                body.append(later)
            section = "\n".join(body).strip()
            if not section:
                raise StepError(f"CHANGELOG.md's section for {version} is empty")
            return section + "\n"
    raise StepError(f"CHANGELOG.md has no section for {version} (a '## [{version}]' heading)")


def step_changelog(run: Runner, args) -> int:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    section = changelog_section(args.version, text)
    if args.out:
        Path(args.out).write_text(section, encoding="utf-8")
    else:
        sys.stdout.write(section)
    return 0


def publish_command(tag: str, folder: Path, notes: Path) -> list[str]:
    files = [*installers(folder), folder / "SHA256SUMS"]
    files += sorted(p for p in folder.glob("manifests/**/*") if p.is_file())
    cmd = ["gh", "release", "create", tag, "--title", f"{read_identity()['APP_NAME']} {tag.lstrip('v')}",
           "--notes-file", str(notes), "--verify-tag"]
    if re.search(r"(a|b|rc)\d+$", tag):
        cmd.append("--prerelease")
    return cmd + [str(p) for p in files]


def step_publish(run: Runner, args) -> int:
    folder = Path(args.dir)
    version = check_tag(args.tag)
    notes = folder / "release-notes.md"
    notes.write_text(changelog_section(version, (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")),
                     encoding="utf-8")
    write_checksums(folder)
    run(publish_command(args.tag, folder, notes))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("test")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER)
    steps.add_parser("check-repository")
    p = steps.add_parser("check-tag")
    p.add_argument("tag")
    steps.add_parser("build-tools")
    steps.add_parser("build")
    p = steps.add_parser("selftest")
    p.add_argument("--exe", help="the executable to test (default: this OS's frozen build)")
    p = steps.add_parser("checksums")
    p.add_argument("dir")
    p = steps.add_parser("changelog")
    p.add_argument("version")
    p.add_argument("--out")
    p = steps.add_parser("publish")
    p.add_argument("tag")
    p.add_argument("dir")
    args = parser.parse_args(argv)
    run = Runner(dry_run=args.dry_run)
    try:
        if args.step == "check-repository":
            print(check_repository(os.environ.get("GITHUB_REPOSITORY")))
            return 0
        if args.step == "check-tag":
            print(check_tag(args.tag))
            return 0
        if args.step == "checksums":
            print(write_checksums(Path(args.dir)).read_text(encoding="utf-8"), end="")
            return 0
        handler = {"test": step_test, "build-tools": step_build_tools, "build": step_build,
                   "selftest": step_selftest, "changelog": step_changelog, "publish": step_publish}[args.step]
        return handler(run, args)
    except (StepError, subprocess.CalledProcessError, OSError) as exc:
        print(f"{args.step} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
