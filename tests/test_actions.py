"""--open-url and --exec: values encoded, programs run for real without a shell."""

from __future__ import annotations

import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from eslkit.actions import ExecAction, UrlAction, check_template
from eslkit.calls import LegView
from eslkit.errors import TemplateError
from tests.support.cli import eslkit

NASTY = 'Bob & "Alice" $(touch /tmp/pwned); `id` | x\n#frag?q=1 \x1b]0;t\x07'


def leg(name=NASTY, contact=None):
    return LegView(ext="1001", state="ringing", leg_uuid="leg-1", call_uuid="call-1", caller_name=name,
                   caller_number="+44 20 7946", dialed="2000", queue=None, contact=contact)


def test_url_values_are_encoded_and_cannot_change_the_address():
    url = UrlAction("https://crm.example/search?phone={caller_number}&name={caller_name}&q={queue}").url(leg())
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "crm.example", "/search", "")
    query = parse_qs(parts.query, keep_blank_values=True)
    assert query["phone"] == ["+44 20 7946"]
    assert query["name"] == [NASTY]
    assert query["q"] == [""]
    assert set(query) == {"phone", "name", "q"}


def test_url_opened_with_the_opener():
    opened = []
    action = UrlAction("https://crm.example/c/{contact_id}", opener=opened.append)
    action(leg(contact={"number": "1", "id": "42/../x"}))
    deadline = time.monotonic() + 5
    while not opened and time.monotonic() < deadline:
        time.sleep(0.01)
    assert opened == ["https://crm.example/c/42%2F..%2Fx"]


@pytest.mark.parametrize("template", ["ftp://x/{caller_number}", "{caller_number}", "javascript:alert(1)"])
def test_url_must_be_http(template):
    with pytest.raises(TemplateError):
        UrlAction(template)


@pytest.mark.parametrize("template", ["{nope}", "{caller_name.__class__}", "{caller_name!r}", "{caller_name:>9}", "{"])
def test_bad_templates(template):
    with pytest.raises(TemplateError) as info:
        check_template(template)
    assert info.value.exit_code == 14


def test_exec_runs_without_a_shell_each_value_one_argument(tmp_path):
    out = tmp_path / "argv.json"
    script = "import json,sys; json.dump(sys.argv[1:], open(sys.argv[1], 'w'))"
    action = ExecAction([sys.executable, "-c", script, str(out), "Call from {caller_name}", "{caller_number}",
                         "{contact_name}"])
    child = action(leg())
    assert child.wait(timeout=10) == 0
    argv = json.loads(out.read_text())
    # one argument each; no shell ran $(...) or `id`; control characters made visible
    assert argv[1:] == ['Call from Bob & "Alice" $(touch /tmp/pwned); `id` | x␊#frag?q=1 ␛]0;t␇',
                        "+44 20 7946", ""]
    action.reap()
    assert action.children == []


def test_exec_program_missing_is_a_clean_error(tmp_path):
    action = ExecAction([str(tmp_path / "no-such-program")])
    with pytest.raises(TemplateError, match="Cannot run"):
        action(leg())


def test_a_flood_of_rings_starts_a_bounded_number_of_programs(tmp_path):
    from eslkit.actions import MAX_RUNNING

    action = ExecAction([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = [action(leg()) for _ in range(MAX_RUNNING + 5)]
        assert sum(p is not None for p in started) == MAX_RUNNING
        assert started[-1] is None
    finally:
        for child in action.children:
            child.kill()
            child.wait(5)
    action.reap()
    assert action.children == []
    assert action(leg()) is not None  # room again once they finished
    action.children[0].kill()
    action.children[0].wait(5)


def test_exec_programs_do_not_inherit_eslkit_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("ESL_PASSWORD", "s3cret-esl")
    monkeypatch.setenv("ESLKIT_BROKER_PASSWORD", "s3cret-mqtt")
    monkeypatch.setenv("HARMLESS", "kept")
    out = tmp_path / "env.json"
    script = "import json,os,sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    child = ExecAction([sys.executable, "-c", script, str(out)])(leg())
    assert child.wait(timeout=10) == 0
    env = json.loads(out.read_text())
    assert env["HARMLESS"] == "kept"
    assert "ESL_PASSWORD" not in env and "ESLKIT_BROKER_PASSWORD" not in env


# --- {contact_<column>} is checked against the contacts file at start ------------------------------

ALL_FIELDS = ("{ext}, {state}, {caller_number}, {caller_name}, {dialed}, {queue}, {call_uuid}, {leg_uuid}, "
              "{direction}, {other_number}, {other_name}, {transferred_from}")


def test_a_contact_field_must_be_a_column_of_the_contacts_file():
    columns = ["number", "name", "company", "note"]
    assert check_template("https://crm/{contact_company}?n={contact_name}", columns) == \
        ["contact_company", "contact_name"]
    with pytest.raises(TemplateError) as err:
        check_template("https://crm/{contact_compny}", columns)
    assert str(err.value) == ("The template 'https://crm/{contact_compny}' uses {contact_compny}, but the contacts "
                              "file has no column 'compny' (did you mean {contact_company}?).")
    assert err.value.fix == (f"Use {ALL_FIELDS}, or the contacts file's {{contact_number}}, {{contact_name}}, "
                             "{contact_company}, {contact_note}.") and err.value.exit_code == 14
    with pytest.raises(TemplateError, match=r"uses \{contact_company\}, but there is no --contacts file\.$") as err:
        check_template("https://crm/{contact_company}", ())
    assert err.value.fix == f"Give --contacts FILE (with a column 'company'), or use the fields there are: {ALL_FIELDS}."


def test_an_unknown_field_gets_the_closest_and_every_field_there_is():
    with pytest.raises(TemplateError) as err:
        check_template("{caller_nmber}", ())
    assert str(err.value).endswith("uses an unknown field {caller_nmber} (did you mean {caller_number}?).")
    assert err.value.fix == f"Use {ALL_FIELDS} ({{contact_<column>}} needs --contacts FILE)."


def test_popup_refuses_a_contact_field_the_file_lacks_before_connecting(tmp_path):
    book = tmp_path / "contacts.csv"
    book.write_text("number,name,company\n6208,Ada,AE\n")
    r = eslkit("popup", "--ext", "1001", "--port", 1, "--contacts", book,
               "--open-url", "https://crm.example/{contact_compny}", env={"HOME": "/nonexistent"})
    assert r.returncode == 14, r.stderr  # before connecting: nothing listens on port 1
    assert "has no column 'compny' (did you mean {contact_company}?)" in r.stderr
    r = eslkit("popup", "--ext", "1001", "--port", 1, "--exec", "true", "{contact_company}",
               env={"HOME": "/nonexistent"})
    assert r.returncode == 14 and "but there is no --contacts file" in r.stderr, r.stderr


# --- what the --exec program prints is shown, not discarded ------------------------------------------


def test_exec_hands_on_what_the_program_prints_and_a_failing_status():
    said = []
    script = "import sys; print('line one'); print('to stderr', file=sys.stderr); print('x' * 5); sys.exit(3)"
    action = ExecAction([sys.executable, "-c", script, "{caller_number}"], on_output=said.append)
    action(leg())
    action.wait(10)
    name = sys.executable.rsplit("/", 1)[-1]
    assert sorted(said[:3]) == sorted([f"{name}: line one", f"{name}: to stderr", f"{name}: xxxxx"])
    assert said[3:] == [f"{name} exited with status 3"]


def test_a_chatty_program_is_cut_to_its_first_lines():
    said = []
    action = ExecAction([sys.executable, "-c", "for i in range(5000): print(i)"], on_output=said.append)
    action(leg())
    action.wait(10)
    assert len(said) == ExecAction.MAX_LINES + 1 and said[-1].endswith(": … 4980 more lines not shown")


def test_popup_shows_the_exec_output_on_stderr_and_keeps_stdout_json(captures):
    r = eslkit("popup", "--ext", "1002", "--replay", captures / "scenario_noanswer_plain.raw", "--format", "json",
               "--exec", sys.executable, "--", "-c", "import sys; print('CRM says', sys.argv[1])", "{caller_number}",
               env={"HOME": "/nonexistent"})
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["state"] for x in r.stdout.splitlines()] == ["ringing", "ended"]
    name = sys.executable.rsplit("/", 1)[-1]
    assert f"eslkit: --exec {name}: CRM says 6208\n" in r.stderr
