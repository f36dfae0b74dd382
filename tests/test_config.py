"""Profiles, fs_cli's files and the password rules (eslkit.config, commands/options)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from eslkit import config
from eslkit.config import ConnectionSettings, read_fs_cli_config, resolve
from eslkit.errors import ConfigError
from tests.support.cli import EXE



@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME, no ESL_PASSWORD, and no system fs_cli.conf."""
    monkeypatch.setattr(config, "SYSTEM_FS_CLI_CONF", tmp_path / "etc-fs_cli.conf")
    return tmp_path


def env_for(home: Path, **extra) -> dict:
    return {"HOME": str(home), **extra}


def write_toml(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / ".config" / "eslkit" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_defaults_without_any_file(home):
    s = resolve(env=env_for(home))
    assert (s.host, s.port, s.password, s.password_source) == ("127.0.0.1", 8021, "ClueCon", "default")
    assert s.warnings == ()


def test_toml_profile_fills_host_port_password(home):
    write_toml(home, '[profiles.pbx1]\nhost = "10.1.2.3"\nport = 8022\npassword = "s3cret"\n')
    s = resolve(profile="pbx1", env=env_for(home))
    assert (s.host, s.port, s.password, s.password_source, s.profile) == (
        "10.1.2.3", 8022, "s3cret", "profile", "pbx1")
    assert s.warnings == ()


def test_options_beat_the_profile(home):
    write_toml(home, '[profiles.pbx1]\nhost = "10.1.2.3"\nport = 8022\npassword = "s3cret"\n')
    s = resolve(host="pbx.example", port=9000, profile="pbx1", env=env_for(home))
    assert (s.host, s.port, s.password) == ("pbx.example", 9000, "s3cret")


def test_password_precedence_option_env_profile_default(home):
    write_toml(home, '[profiles.p]\npassword = "from-profile"\n')
    env = env_for(home, ESL_PASSWORD="from-env")
    s = resolve(password="from-option", profile="p", env=env, password_from_command_line=True)
    assert (s.password, s.password_source) == ("from-option", "option")
    s = resolve(profile="p", env=env)
    assert (s.password, s.password_source) == ("from-env", "env")
    s = resolve(profile="p", env=env_for(home))
    assert (s.password, s.password_source) == ("from-profile", "profile")
    write_toml(home, '[profiles.p]\nhost = "h"\n')
    s = resolve(profile="p", env=env_for(home))
    assert (s.password, s.password_source) == ("ClueCon", "default")


def test_password_on_command_line_warns_about_process_list(home):
    s = resolve(password="x", env=env_for(home), password_from_command_line=True)
    assert len(s.warnings) == 1
    assert "process list" in s.warnings[0] and "ESL_PASSWORD" in s.warnings[0]
    assert "x" not in s.warnings[0].replace("ESL_PASSWORD", "").split()  # the value never appears


def test_repr_masks_the_password(home):
    write_toml(home, '[profiles.p]\npassword = "TopSecret42"\n')
    s = resolve(profile="p", env=env_for(home))
    assert "TopSecret42" not in repr(s) and "TopSecret42" not in str(s)
    prof = config.load_profiles(env_for(home))["p"]
    assert "TopSecret42" not in repr(prof)
    assert "TopSecret42" not in repr(ConnectionSettings(password="TopSecret42"))


def test_world_readable_config_with_password_warns(home):
    path = write_toml(home, '[profiles.p]\npassword = "pw"\n', mode=0o644)
    s = resolve(profile="p", env=env_for(home))
    assert any(str(path) in w and "chmod 600" in w for w in s.warnings)
    # the file is exposed even when ESL_PASSWORD wins this time
    s = resolve(profile="p", env=env_for(home, ESL_PASSWORD="x"))
    assert any("chmod 600" in w for w in s.warnings)
    path.chmod(0o600)
    assert resolve(profile="p", env=env_for(home)).warnings == ()


def test_world_readable_config_without_password_is_fine(home):
    write_toml(home, '[profiles.p]\nhost = "h"\n', mode=0o644)
    assert resolve(profile="p", env=env_for(home)).warnings == ()


def test_unknown_profile_is_a_config_error_naming_the_known_ones(home):
    write_toml(home, '[profiles.a]\nhost = "x"\n')
    with pytest.raises(ConfigError) as err:
        resolve(profile="nope", env=env_for(home))
    assert "'nope'" in str(err.value) and "a" in str(err.value)
    assert err.value.exit_code == 12


@pytest.mark.parametrize("text, fragment", [
    ("[profiles.p\nhost='x'", "not valid TOML"),
    ('[profiles.p]\nport = "eighty"\n', "port must be a number"),
    ('[profiles.p]\nport = 70000\n', "port must be a number"),
    ('[profiles.p]\npasswrod = "x"\n', "unknown key"),
    ('[profiles.p]\npassword = 1234\n', "password must be a string"),
])
def test_bad_toml_is_one_clear_config_error(home, text, fragment):
    write_toml(home, text)
    with pytest.raises(ConfigError, match=fragment):
        resolve(profile="p", env=env_for(home))


FS_CLI_CONF = """\
; fs_cli profiles
[default]
host => 127.0.0.1
port => 8021
password => ClueConDefault
debug => 6

[pbx2]
HOST => 192.0.2.10
Port => 8031
password=>with spaces and => arrows
loglevel => info
key_F1 => help
# a comment
[badport]
port => nope
"""


def test_fs_cli_file_sections_and_keys(tmp_path):
    path = tmp_path / ".fs_cli_conf"
    path.write_text(FS_CLI_CONF)
    profiles = read_fs_cli_config(path)
    assert set(profiles) == {"default", "pbx2", "badport"}
    assert (profiles["pbx2"].host, profiles["pbx2"].port) == ("192.0.2.10", 8031)
    assert profiles["pbx2"].password == "with spaces and => arrows"
    assert profiles["badport"].port is None  # fs_cli ignores a port it cannot read
    assert profiles["default"].password == "ClueConDefault"


def test_fs_cli_profile_works_with_profile_option_and_default_is_used(home):
    (home / ".fs_cli_conf").write_text(FS_CLI_CONF)
    (home / ".fs_cli_conf").chmod(0o600)
    s = resolve(profile="pbx2", env=env_for(home))
    assert (s.host, s.port, s.password_source) == ("192.0.2.10", 8031, "profile")
    # without --profile, fs_cli's "default" profile applies, as in fs_cli
    s = resolve(env=env_for(home))
    assert (s.password, s.profile) == ("ClueConDefault", "default")


def test_eslkit_profile_wins_over_fs_cli_profile_of_same_name(home):
    (home / ".fs_cli_conf").write_text("[p]\nhost => from-fs-cli\n")
    write_toml(home, '[profiles.p]\nhost = "from-eslkit"\n')
    assert resolve(profile="p", env=env_for(home)).host == "from-eslkit"


def test_system_fs_cli_conf_only_when_home_file_is_missing(home):
    config.SYSTEM_FS_CLI_CONF.write_text("[sys]\nhost => 198.51.100.1\n")
    assert resolve(profile="sys", env=env_for(home)).host == "198.51.100.1"
    (home / ".fs_cli_conf").write_text("[mine]\nhost => 203.0.113.5\n")
    with pytest.raises(ConfigError):
        resolve(profile="sys", env=env_for(home))  # fs_cli reads only the first file it opens


def test_xdg_config_home_is_respected(home, tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "eslkit").mkdir(parents=True)
    (xdg / "eslkit" / "config.toml").write_text('[profiles.x]\nport = 9999\n')
    assert resolve(profile="x", env=env_for(home, XDG_CONFIG_HOME=str(xdg))).port == 9999


# --- through the real CLI --------------------------------------------------------------


def run_cli(args, home, **env):
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), **env}
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=30, env=full)


def test_cli_unknown_profile_exits_with_config_error_code(tmp_path):
    r = run_cli(["watch", "--profile", "ghost", "--format", "json", "--count", "1"], tmp_path)
    assert r.returncode == 12
    assert "ghost" in r.stderr and "Traceback" not in r.stderr


def test_cli_password_option_warns_and_never_echoes_it(tmp_path):
    # Port 1 on loopback refuses: the warning comes first, then a clean connection error.
    r = run_cli(["watch", "--port", "1", "--password", "Hunter2Secret", "--format", "json"], tmp_path)
    assert r.returncode == 3, r.stderr
    assert "process list" in r.stderr
    assert "Hunter2Secret" not in r.stderr + r.stdout


def test_cli_env_password_gives_no_warning(tmp_path):
    r = run_cli(["watch", "--port", "1", "--format", "json"], tmp_path, ESL_PASSWORD="Hunter2Secret")
    assert r.returncode == 3
    assert "process list" not in r.stderr
    assert "Hunter2Secret" not in r.stderr + r.stdout


# --- only the file a run uses is its business (issue 20) -----------------------------------


def test_a_file_this_run_does_not_use_gives_no_warning(home):
    (home / ".fs_cli_conf").write_text("[pbx9]\nhost => 192.0.2.9\npassword => pw\n")
    (home / ".fs_cli_conf").chmod(0o644)
    write_toml(home, '[profiles.other]\npassword = "pw"\n', mode=0o644)
    assert resolve(port=8022, env=env_for(home)).warnings == ()
    # the run that takes its profile from a file hears about that file, and only that one
    s = resolve(profile="pbx9", env=env_for(home))
    assert len(s.warnings) == 1 and str(home / ".fs_cli_conf") in s.warnings[0]


def test_a_broken_config_toml_does_not_block_a_run_without_profile(home):
    path = write_toml(home, "[profiles.p\nhost='x'")
    s = resolve(port=8022, env=env_for(home))
    assert (s.host, s.port, s.profile) == ("127.0.0.1", 8022, None)
    assert len(s.warnings) == 1
    assert str(path) in s.warnings[0] and "not valid TOML" in s.warnings[0]
    assert "profiles are not used" in s.warnings[0] and "--profile" not in s.warnings[0]
    with pytest.raises(ConfigError) as err:
        resolve(profile="p", env=env_for(home))
    assert "--profile" not in err.value.fix and "Correct" in err.value.fix


def test_cli_plain_port_run_with_a_broken_config_toml_reaches_the_switch(tmp_path):
    write_toml(tmp_path, "[profiles.p\nhost='x'")
    # Port 1 on loopback refuses: the run went past the config (exit 3, not 12).
    r = run_cli(["watch", "--port", "1", "--format", "json"], tmp_path)
    assert r.returncode == 3, r.stderr
    assert "not valid TOML" in r.stderr and "warning" in r.stderr
    r = run_cli(["watch", "--profile", "p", "--format", "json"], tmp_path)
    assert r.returncode == 12 and "--profile" not in r.stderr, r.stderr
