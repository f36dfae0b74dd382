"""The users file of `eslkit serve`, its hashes, `eslkit passwd`, the session cookies, CSRF
tokens and the failed-login brake."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from eslkit.errors import InputFileError
from eslkit.web.security import LoginBrake, Signer
from eslkit.web.users import User, Users, allowed, hash_password, hash_token, load_users, save_user
from tests.support.sim import ESLKIT


def eslkit(*args: str, input: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(ESLKIT), *args], input=input, capture_output=True, text=True, timeout=60)


# --- hashes and the file ---------------------------------------------------------------


def test_a_password_is_kept_only_as_a_salted_scrypt_hash():
    one, two = hash_password("correct horse"), hash_password("correct horse")
    assert one.startswith("scrypt$16384$8$1$") and one != two  # salted
    assert "correct horse" not in one
    user = User("alice", "agent", ("1001",), one)
    assert user.check_password("correct horse") and not user.check_password("correct hors")
    people = Users([user])
    assert people.login("alice", "correct horse") is user
    assert people.login("alice", "wrong") is None and people.login("nobody", "correct horse") is None


def test_a_token_is_found_by_its_hash_and_only_by_it():
    people = Users([User("crm", "agent", ("1001",), hash_token("t0ken-0123456789"))])
    assert people.with_token("t0ken-0123456789").name == "crm"
    assert people.with_token("t0ken-012345678") is None and people.with_token("") is None
    assert people.login("crm", "t0ken-0123456789") is None  # a token is not a password


def test_who_may_see_what():
    agent = User("alice", "agent", ("1001",), "x")
    boss = User("sam", "supervisor", (), "x")
    watched = ("1001", "1002")
    assert allowed(agent, "1001", watched) and not allowed(agent, "1002", watched)
    assert allowed(boss, "1001", watched) and allowed(boss, "1002", watched)
    assert not allowed(boss, "9999", watched) and not allowed(None, "1001", watched)


def test_the_file_round_trips_and_keeps_comments_and_other_lines(tmp_path):
    path = tmp_path / "users.txt"
    assert save_user(path, User("alice", "agent", ("1001",), hash_password("pw-alice-1")))
    assert save_user(path, User("sam", "supervisor", (), hash_password("pw-sam-123")))
    path.write_text(path.read_text() + "# bob starts on Monday\n")
    assert not save_user(path, User("alice", "agent", ("1001", "1003"), hash_password("pw-alice-2")))
    people = load_users(path)
    assert people.exts == ("1001", "1003")
    assert people.login("alice", "pw-alice-2") and not people.login("alice", "pw-alice-1")
    assert "# bob starts on Monday" in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("line, says", [
    ("alice:agent:1001", "expected name:role:extensions:secret"),
    ("al ice:agent:1001:sha256$" + "0" * 64, "may hold only"),
    ("alice:admin:1001:sha256$" + "0" * 64, "not agent or supervisor"),
    ("alice:agent::sha256$" + "0" * 64, "has no extension"),
    ("alice:agent:1001:hunter2", "not a hash eslkit made"),
    ("alice:agent:10<b>01:sha256$" + "0" * 64, "is not an extension"),
])
def test_a_bad_line_is_a_clear_error_with_its_line_number(tmp_path, line, says):
    path = tmp_path / "users.txt"
    path.write_text("# ok\n" + line + "\n")
    with pytest.raises(InputFileError) as err:
        load_users(path)
    assert "line 2" in str(err.value) and says in str(err.value) and err.value.fix


def test_a_missing_file_and_a_file_without_agents_say_how_to_make_one(tmp_path):
    with pytest.raises(InputFileError) as err:
        load_users(tmp_path / "nope.txt")
    assert "eslkit passwd" in err.value.fix
    only_boss = tmp_path / "boss.txt"
    save_user(only_boss, User("sam", "supervisor", (), hash_password("pw-sam-123")))
    with pytest.raises(InputFileError, match="gives no agent"):
        load_users(only_boss)


# --- eslkit passwd -----------------------------------------------------------------------


def test_passwd_adds_and_updates_users_and_makes_tokens(tmp_path):
    path = tmp_path / "users.txt"
    done = eslkit("passwd", str(path), "alice", "--ext", "1001", input="pw-alice-1\n")
    assert done.returncode == 0 and "added alice (agent, 1001)" in done.stderr
    assert "pw-alice-1" not in path.read_text()
    done = eslkit("passwd", str(path), "alice", input="pw-alice-2\n")  # a new password keeps the extension
    assert done.returncode == 0 and "updated alice (agent, 1001)" in done.stderr
    done = eslkit("passwd", str(path), "crm", "--ext", "1001", "--token")
    token = done.stdout.strip()
    assert done.returncode == 0 and len(token) >= 40 and token not in path.read_text()
    people = load_users(path)
    assert people.login("alice", "pw-alice-2") and people.with_token(token).name == "crm"


def test_passwd_refuses_a_short_password_and_an_agent_without_extension(tmp_path):
    path = tmp_path / "users.txt"
    short = eslkit("passwd", str(path), "alice", "--ext", "1001", input="short\n")
    assert short.returncode == 11 and "shorter than 8" in short.stderr and not path.exists()
    noext = eslkit("passwd", str(path), "alice", input="long-enough-pw\n")
    assert noext.returncode == 2 and "--ext" in noext.stderr
    assert "Traceback" not in short.stderr + noext.stderr


def test_passwd_refuses_a_file_that_is_not_a_users_file_before_asking_and_leaves_it_alone(tmp_path):
    # A slip of the argument order (contacts.csv, /etc/passwd): the file must come out
    # byte for byte and mode for mode as it was, not with a user appended and mode 600.
    other = tmp_path / "contacts.csv"
    other.write_text("number,name\n6208,Ada Lovelace\n")
    other.chmod(0o644)
    done = eslkit("passwd", str(other), "bob", "--ext", "1001", input="long-enough-pw\n")
    assert done.returncode == 11 and "contacts.csv, line 1" in done.stderr and "users file" in done.stderr
    assert other.read_text() == "number,name\n6208,Ada Lovelace\n" and stat.S_IMODE(other.stat().st_mode) == 0o644
    nofolder = eslkit("passwd", str(tmp_path / "no" / "users.txt"), "bob", "--ext", "1001", input="long-enough-pw\n")
    assert nofolder.returncode == 11 and "There is no folder" in nofolder.stderr
    badname = eslkit("passwd", str(tmp_path / "users.txt"), "bob:x", "--ext", "1001", input="long-enough-pw\n")
    assert badname.returncode == 2 and "may hold only letters" in badname.stderr
    nopassword = eslkit("passwd", str(tmp_path / "users.txt"), "bob", "--ext", "1001", input="")
    assert nopassword.returncode == 11 and "No password on standard input" in nopassword.stderr
    assert not (tmp_path / "users.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["contacts.csv"]
    assert "Traceback" not in done.stderr + nofolder.stderr + badname.stderr + nopassword.stderr


@pytest.mark.parametrize("key,code,said", [("C-d", 11, "No password was typed"), ("C-c", 130, "")])
def test_passwd_at_a_terminal_ctrl_d_or_ctrl_c_at_the_prompt(tmp_path, key, code, said):
    """Ctrl-D at the password prompt ended with click's bare "Aborted." (exit 1); both keys
    now end the prompt's line, leave no file, and Ctrl-D says what happened."""
    import sys

    from tests.test_watch_tty import Tmux

    path = tmp_path / "users.txt"
    tmux = Tmux(f"cd {tmp_path} && env HOME=/nonexistent {sys.executable} -m eslkit passwd {path} alice "
                "--ext 1001; echo EXIT=$?; sleep 30", 100, 10)
    try:
        tmux.wait_for(lambda lines: lines[0].startswith("Password for alice:"))
        tmux.keys(key)
        lines = tmux.wait_for(lambda lines: any(line.startswith("EXIT=") for line in lines))
    finally:
        tmux.kill()
    assert lines[0].rstrip() == "Password for alice:"  # what follows is on a line of its own
    assert f"EXIT={code}" in lines and said in "\n".join(lines) and not path.exists()


# --- sessions, CSRF and the brake ----------------------------------------------------------


def test_a_session_cookie_cannot_be_forged_changed_or_kept_past_its_time():
    now = [1000.0]
    signer = Signer(b"k" * 32, clock=lambda: now[0], lifetime=60)
    session, cookie = signer.new_session("alice")
    assert signer.session(cookie) == session
    payload, mac = cookie.rsplit(".", 1)
    assert signer.session(payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B")) is None
    bob = Signer(b"k" * 32).new_session("bob")[1].rsplit(".", 1)[0]
    assert signer.session(bob + "." + mac) is None  # another payload under this signature
    assert Signer(b"x" * 32, clock=lambda: now[0]).session(cookie) is None  # another key (a restart)
    for junk in (None, "", "no-dot", "a.b", "." * 2000, payload + ".ünïcødé\ud800", "é.é"):
        assert signer.session(junk) is None
    now[0] += 61
    assert signer.session(cookie) is None


def test_the_csrf_token_belongs_to_one_session():
    signer = Signer(b"k" * 32)
    one, _ = signer.new_session("alice")
    two, _ = signer.new_session("alice")
    assert signer.csrf_ok(one.sid, signer.csrf(one.sid))
    assert not signer.csrf_ok(one.sid, signer.csrf(two.sid)) and not signer.csrf_ok(one.sid, None)
    assert not signer.csrf_ok(one.sid, "ünïcødé")


def test_a_session_logged_out_is_refused_even_from_a_copy_of_its_cookie():
    signer = Signer(b"k" * 32)
    session, cookie = signer.new_session("alice")
    other, other_cookie = signer.new_session("alice")
    signer.end(session)
    assert signer.session(cookie) is None and signer.session(other_cookie) == other


def test_the_brake_holds_for_the_window_then_lets_go():
    now = [0.0]
    brake = LoginBrake(tries=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert brake.wait("ip:1", "name:alice") == 0
        brake.failed("ip:1", "name:alice")
    assert brake.wait("ip:1") == 60 and brake.wait("name:alice") == 60 and brake.wait("ip:2") == 0
    now[0] = 59.5
    assert 0 < brake.wait("ip:2", "name:alice") <= 0.5
    now[0] = 60.1
    assert brake.wait("ip:1", "name:alice") == 0
