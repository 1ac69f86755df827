"""scripts/setup/debian-mirror.sh: the Debian mirror comes from the machine's apt configuration
(one-line sources.list and deb822 .sources), with an override, and no mirror's host name is
written in the repository's scripts."""

import os
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "setup" / "debian-mirror.sh"


def mirror(tmp_path, one_line="", deb822="", **env):
    """Run the script against a private apt configuration holding these sources."""
    (tmp_path / "parts").mkdir()
    (tmp_path / "sources.d").mkdir()
    (tmp_path / "lists").mkdir()
    (tmp_path / "sources.list").write_text(one_line)
    (tmp_path / "sources.d" / "machine.sources").write_text(deb822)
    (tmp_path / "apt.conf").write_text(f'''Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "{tmp_path}/parts";
Dir::Etc::SourceList "{tmp_path}/sources.list";
Dir::Etc::SourceParts "{tmp_path}/sources.d";
Dir::State::Lists "{tmp_path}/lists";
''')
    full = {k: v for k, v in os.environ.items() if not k.startswith("DEBIAN_")}
    full.update(APT_CONFIG=str(tmp_path / "apt.conf"), DEBIAN_CODENAME="bookworm", **env)
    return subprocess.run([str(SCRIPT)], env=full, capture_output=True, text=True, timeout=60)


def test_one_line_sources_name_the_mirror(tmp_path):
    done = mirror(tmp_path, one_line=(
        "deb https://packages.example.com/apt stable main\n"
        "deb http://mirror.corp.example/debian/ bookworm main contrib\n"
        "deb http://mirror.corp.example/debian-security bookworm-security main\n"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["http://mirror.corp.example/debian", "http://mirror.corp.example/debian-security"]


def test_deb822_sources_name_the_mirror(tmp_path):
    done = mirror(tmp_path, deb822=(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n\n"
        "Types: deb\nURIs: http://proxy.internal:3142/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://proxy.internal:3142/debian-security\nSuites: bookworm-security\n"
        "Components: main\n"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["http://proxy.internal:3142/debian", "http://proxy.internal:3142/debian-security"]


def test_the_override_wins_and_missing_sources_are_named(tmp_path):
    done = mirror(tmp_path, DEBIAN_MIRROR="http://m.example/debian/", DEBIAN_SECURITY_MIRROR="http://m.example/sec")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["http://m.example/debian", "http://m.example/sec"]
    (tmp_path / "again").mkdir()
    done = mirror(tmp_path / "again", one_line="deb http://mirror.corp.example/debian bookworm main\n")
    assert done.returncode != 0
    assert "no source for bookworm-security" in done.stderr and "DEBIAN_SECURITY_MIRROR" in done.stderr


@pytest.mark.parametrize("host", ["deb.debian.org", "security.debian.org", "ftp.debian.org", "snapshot.debian.org"])
def test_no_mirror_host_is_written_in_the_scripts(host):
    found = subprocess.run(["git", "grep", "-n", "-F", host, "--", "scripts", "Makefile", ".ci", "flake.nix", "nix"],
                           cwd=ROOT, capture_output=True, text=True)
    assert found.stdout == "", found.stdout
