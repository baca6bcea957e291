"""Run values are data, not code: checks on PipelineRun values, masked parameters, shell and SQL embedding."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import Resolved, ResolveError, RunContext, resolve_command
from datapipeline.core.shellwords import Quote, env_reference, quote_state
from datapipeline.core.values import MAX_VALUE_LENGTH, run_values

START = datetime(2026, 11, 21, 3, tzinfo=UTC)
END = datetime(2026, 11, 22, 3, tzinfo=UTC)

PARAMETERS: list[dict[str, Any]] = [
    {"id": "myGreeting", "default": "hello", "overridable": True},
    {"id": "myRegion", "default": "eu", "overridable": True, "allowedValues": ["eu", "us"]},
    {"id": "myDay", "default": "2026-01-01", "overridable": True, "pattern": r"\d{4}-\d{2}-\d{2}"},
    {"id": "myCount", "type": "Integer", "default": "3", "overridable": True},
    {"id": "myTable", "default": "orders"},
    {"id": "myList", "isArray": True, "default": ["a"], "overridable": True},
    {"id": "*myToken", "valueFromSecret": {"name": "tokens", "key": "api"}},
]


def definition(command: str = "echo #{myGreeting}", script: str = "select 1", **extra: Any) -> PipelineDefinition:
    spec: dict[str, Any] = {
        "scheduleType": "ondemand",
        "parameters": PARAMETERS,
        "databases": [{"name": "pg", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db/app",
                       "username": "app", "passwordSecret": {"name": "pg", "key": "password"}}],
        "activities": [{"name": "say", "type": "ShellCommandActivity", "command": command},
                       {"name": "sql", "type": "SqlActivity", "database": "pg", "script": script}],
        **extra,
    }
    return parse_pipeline(spec)


def resolve(definition: PipelineDefinition, activity: str = "say", **values: Any) -> Resolved:
    checked, problems = run_values(definition, values)
    assert problems == []
    context = RunContext(pipeline="p", run="p-1", scheduled_start=START, scheduled_end=END, overrides=checked)
    return resolve_command(definition, context, "activity", activity, activity, 1)


def problems(values: Any) -> list[str]:
    return [str(p) for p in run_values(definition(), values)[1]]


# ------------------------------------------------------------------ which values a run may set
def test_a_run_may_set_overridable_parameters_with_valid_values() -> None:
    values, found = run_values(definition(), {"myGreeting": "hi there", "myRegion": "us", "myDay": "2026-02-03",
                                              "myCount": 7, "myList": ["x", "y"]})
    assert found == []
    assert values == {"myGreeting": "hi there", "myRegion": "us", "myDay": "2026-02-03", "myCount": "7",
                      "myList": ["x", "y"]}


@pytest.mark.parametrize(("values", "message"), [
    ({"myTable": "users"}, 'spec.values.myTable: parameter "myTable" cannot be set by a run; the Pipeline\'s '
                           "author allows it with overridable: true"),
    ({"*myToken": "x"}, 'spec.values.*myToken: parameter "myToken" is masked: its value comes only from its '
                        "Secret, never from a run"),
    ({"myNope": "x"}, 'spec.values.myNope: no parameter "myNope" is defined (parameters: myCount, myDay, '
                      "myGreeting, myList, myRegion, myTable, myToken)"),
    ({"myRegion": "eu; rm -rf /"}, 'spec.values.myRegion: "eu; rm -rf /" is not allowed; one of eu, us'),
    ({"myDay": "$(id)"}, 'spec.values.myDay: "$(id)" does not match the parameter\'s pattern \\d{4}-\\d{2}-\\d{2}'),
    ({"myCount": "1; id"}, 'spec.values.myCount: "1; id" is not an Integer (at most 18 digits)'),
    ({"myCount": 10 ** 5000}, "spec.values.myCount: must be a string (or a list of strings for an isArray "
                              "parameter)"),
    ({"myGreeting": ["a"]}, 'spec.values.myGreeting: parameter "myGreeting" is not an array (isArray: false), '
                            "so its value must be a single string"),
    ({"myList": [{"a": 1}]}, "spec.values.myList: must be a list of strings"),
    ({"myGreeting": "x" * (MAX_VALUE_LENGTH + 1)},
     f"spec.values.myGreeting: is {MAX_VALUE_LENGTH + 1} characters long; a parameter value has at most "
     f"{MAX_VALUE_LENGTH}"),
    ("myGreeting=x", "spec.values: must map parameter ids to values"),
])
def test_a_run_value_that_is_not_allowed_is_refused_naming_the_field(values: Any, message: str) -> None:
    assert problems(values) == [message]


def test_a_refused_run_gets_no_values_at_all() -> None:
    """Never half-applied: one bad value refuses them all."""
    values, found = run_values(definition(), {"myGreeting": "ok", "myTable": "users"})
    assert values == {} and len(found) == 1


def test_patterns_are_linear_time_so_a_hostile_value_cannot_stall_the_check() -> None:
    spec = definition(command="echo", parameters=[{"id": "myX", "default": "a", "overridable": True,
                                                   "pattern": "(a+)+$"}])
    assert [str(p) for p in run_values(spec, {"myX": "a" * 4000 + "!"})[1]] == [
        'spec.values.myX: "' + "a" * 77 + '..." does not match the parameter\'s pattern (a+)+$']


# ------------------------------------------------------------------ parameters in the Pipeline
def parse_problems(parameters: list[dict[str, Any]], **extra: Any) -> list[str]:
    with pytest.raises(DefinitionError) as error:
        definition(parameters=parameters, **extra)
    return [str(p) for p in error.value.problems]


@pytest.mark.parametrize(("parameters", "extra", "message"), [
    ([{"id": "myX", "default": "a", "pattern": "(a"}], {},
     "spec.parameters[0].pattern: is not a valid RE2 regular expression: missing ): (a"),
    ([{"id": "myX", "default": "b", "pattern": "a+"}], {},
     'spec.parameters[0].default: "b" does not match the parameter\'s pattern a+'),
    ([{"id": "myX", "pattern": "a+"}], {"values": {"myX": "b"}},
     'spec.values.myX: "b" does not match the parameter\'s pattern a+'),
    ([{"id": "*myX", "default": "hunter22"}], {},
     'spec.parameters[0].default: masked parameter "myX" takes no inline value; put it in a Secret and set '
     "valueFromSecret: {name: SECRET, key: KEY}"),
    ([{"id": "*myX", "valueFromSecret": {"name": "s", "key": "k"}}], {"values": {"*myX": "hunter22"}},
     'spec.values.*myX: masked parameter "myX" takes no inline value; put it in a Secret and set valueFromSecret '
     "on the parameter"),
    ([{"id": "*myX", "valueFromSecret": {"name": "s", "key": "k"}, "overridable": True}], {},
     'spec.parameters[0].overridable: masked parameter "myX" cannot be overridable: a run would pass its secret '
     "in clear text"),
    ([{"id": "myX", "default": "a", "valueFromSecret": {"name": "s", "key": "k"}}], {},
     'spec.parameters[0].valueFromSecret: is only for masked parameters; write the id as "*myX" so its value is '
     "treated as a secret"),
    ([{"id": "*myX", "valueFromSecret": {"name": "s"}}], {},
     "spec.parameters[0].valueFromSecret: must be a Secret reference {name: SECRET, key: KEY} (key missing); "
     "secrets are never written inline"),
])
def test_parameter_definitions_are_checked(parameters: list[dict[str, Any]], extra: dict[str, Any],
                                           message: str) -> None:
    assert message in parse_problems(parameters, **extra)


# ------------------------------------------------------------------ shell quoting
@pytest.mark.parametrize(("text", "state"), [
    ("echo ", Quote.NONE), ("echo '", Quote.SINGLE), ('echo "', Quote.DOUBLE), ("echo 'a' ", Quote.NONE),
    ('echo "it\'s ', Quote.DOUBLE), ("echo \\'", Quote.NONE), ('echo "a\\"', Quote.DOUBLE),
    ("echo 'a\\'", Quote.NONE),
])
def test_quote_state_follows_posix_quoting(text: str, state: Quote) -> None:
    assert quote_state(text) is state


HOSTILE = ["; touch /tmp/pwned-kdp", "$(touch /tmp/pwned-kdp)", "`touch /tmp/pwned-kdp`", "' ; touch /tmp/pwned-kdp '",
           '" ; touch /tmp/pwned-kdp "', "a\nb", "*", "$HOME", "\\", "'\"'\"'"]


@pytest.mark.parametrize("command", [
    "printf '%s' #{myGreeting}",
    'printf "%s" "#{myGreeting}"',
    "printf '%s' '#{myGreeting}'",
    "printf '%s' \"pre-#{myGreeting}-post\"",
    "printf '%s' 'pre-#{myGreeting}-post'",
    "printf '%s' pre-#{myGreeting}-post",
])
@pytest.mark.parametrize("value", HOSTILE)
def test_a_run_value_reaches_the_shell_as_text_whatever_the_quoting(command: str, value: str,
                                                                    tmp_path: Any) -> None:
    """Run by a real /bin/sh: the command prints exactly the author's text with the value in place."""
    resolved = resolve(definition(command=command), myGreeting=value)
    shell = resolved.task.fields["command"]
    assert value not in shell or value in ("*", "\\")  # the value itself is not in the command text
    out = subprocess.run(["/bin/sh", "-c", shell], env={"PATH": "/usr/bin:/bin", **dict(resolved.env)},
                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    literal = command.replace("printf '%s' ", "").replace('printf "%s" ', "").strip("'\"")
    assert out == literal.replace("#{myGreeting}", value)
    assert not (tmp_path / "pwned-kdp").exists()


def test_the_authors_own_values_are_pasted_as_aws_does() -> None:
    """Only values the run set are deferred; the Pipeline's own (default, values) stay in the command."""
    resolved = resolve(definition(command="echo #{myGreeting} #{myTable} #{format(@scheduledStartTime,'YYYY')}"))
    assert resolved.task.fields["command"] == "echo hello orders 2026"
    assert resolved.env == ()


def test_a_value_read_through_a_variable_or_function_is_still_deferred() -> None:
    spec = definition(command="echo #{myShout}", defaults={"vars": {"myShout": "#{myGreeting + '!'}"}})
    resolved = resolve(spec, myGreeting="$(id)")
    assert resolved.task.fields["command"] == 'echo "${DATAPIPELINE_VALUE_1}"'
    assert resolved.env == (("DATAPIPELINE_VALUE_1", "$(id)!"),)


def test_a_masked_parameter_reaches_a_shell_command_from_its_secret_only() -> None:
    resolved = resolve(definition(command="curl -H \"Authorization: #{*myToken}\" https://x"))
    assert resolved.task.fields["command"] == 'curl -H "Authorization: ${DATAPIPELINE_PARAM_MYTOKEN}" https://x'
    assert [(s.env, s.secret, s.key) for s in resolved.secrets] == [("DATAPIPELINE_PARAM_MYTOKEN", "tokens", "api")]


def test_a_masked_parameter_next_to_text_is_still_one_variable() -> None:
    assert resolve(definition(command="echo #{myToken}x")).task.fields["command"] == \
        'echo "${DATAPIPELINE_PARAM_MYTOKEN}"x'


def test_sql_takes_run_values_only_when_they_are_constrained() -> None:
    spec = definition(script="select * from t where region = '#{myRegion}' and n > #{myCount}")
    assert resolve(spec, "sql", myRegion="us", myCount="5").task.fields["script"] == \
        "select * from t where region = 'us' and n > 5"
    loose = definition(script="select * from t where name = '#{myGreeting}'")
    with pytest.raises(ResolveError, match=r'spec.activities\[1\].script: parameter "myGreeting" is set by the '
                                           "run and would decide what runs or where data goes; give it "
                                           "allowedValues or a pattern"):
        resolve(loose, "sql", myGreeting="x' or '1'='1")
    assert resolve(loose, "sql").task.fields["script"] == "select * from t where name = 'hello'"


def test_env_reference_forms() -> None:
    assert env_reference("echo ", "V") == '"${V}"'
    assert env_reference('echo "a', "V") == "${V}"
    assert env_reference("echo 'a", "V") == "'\"${V}\"'"


# ------------------------------------------------------------------ secrets reach pods from Secrets only
def test_the_job_takes_masked_and_run_values_from_the_environment_and_lists_its_secret_variables() -> None:
    from datapipeline.k8s.jobs import Owner, build_job_spec

    spec = parse_pipeline({**_raw(spec_command="run #{*myToken} #{myGreeting}"),
                           "computeProfiles": [{"name": "cp", "type": "ComputeProfile",
                                                "envFromSecrets": ["team-creds"]}],
                           "defaults": {"runsOn": "cp"}})
    resolved = resolve(spec, myGreeting="hi; id")
    job = build_job_spec(name="j", namespace="ns", owner=Owner("r", "u"), pipeline="p", task=resolved.task,
                         definition=spec, activity="say", secrets=resolved.secrets, extra_env=dict(resolved.env))
    text = str(job)
    assert "hi; id" in dict(resolved.env).values() and "hunter" not in text
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["DATAPIPELINE_PARAM_MYTOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "tokens", "key": "api"}}
    assert env["DATAPIPELINE_VALUE_1"]["value"] == "hi; id"
    assert env["DATAPIPELINE_SECRET_ENV"]["value"] == "DATAPIPELINE_PARAM_MYTOKEN"
    assert {"name": "secret-0", "secret": {"secretName": "team-creds", "defaultMode": 0o440}} in pod["volumes"]
    assert {"name": "secret-0", "mountPath": "/var/run/datapipeline/secrets/0", "readOnly": True} in \
        pod["containers"][0]["volumeMounts"]


def _raw(spec_command: str) -> dict[str, Any]:
    return {"scheduleType": "ondemand", "parameters": PARAMETERS,
            "activities": [{"name": "say", "type": "ShellCommandActivity", "command": spec_command}]}


def test_the_runner_redacts_every_secret_it_can_see(tmp_path: Any, monkeypatch: Any) -> None:
    from datapipeline.runner import main as runner_main
    from datapipeline.runner.log import Redactor

    redactor = Redactor()
    monkeypatch.setattr(runner_main, "REDACT", redactor)
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "API_KEY").write_text("from-a-mounted-secret")
    (tmp_path / "0" / "tls.key").write_text("-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----\n")
    monkeypatch.setattr(runner_main, "SECRET_MOUNT_DIR", str(tmp_path))
    monkeypatch.setenv("DATAPIPELINE_SECRET_ENV", "DATAPIPELINE_PARAM_MYTOKEN,DATAPIPELINE_DB_PG_USERNAME")
    monkeypatch.setenv("DATAPIPELINE_PARAM_MYTOKEN", "masked-token-value")
    monkeypatch.setenv("DATAPIPELINE_DB_PG_USERNAME", "secret-user")
    runner_main._register_secrets(None)
    line = "token masked-token-value user secret-user key from-a-mounted-secret pem AAAABBBBCCCCDDDD"
    assert redactor(line) == "token *** user *** key *** pem ***"


@pytest.mark.parametrize(("field", "message"), [
    ({"command": "echo #{'x' + *myToken}"}, 'spec.activities[0].command: #{*myToken}: masked parameter "myToken" '
     "comes from a Secret, so only a shell command can use it, alone in its expression (#{*myToken}); there it is "
     "the variable $DATAPIPELINE_PARAM_MYTOKEN"),
    ({"command": "echo ok", "stdout": "s3://b/#{*myToken}"}, 'spec.activities[0].stdout: #{*myToken}: masked '
     'parameter "myToken" comes from a Secret'),
    ({"command": "echo #{myShh}"}, 'spec.activities[0].vars.myShh: #{*myToken}: masked parameter "myToken"'),
])
def test_validate_refuses_a_masked_parameter_where_it_cannot_be_read(field: dict[str, str], message: str) -> None:
    spec = {"scheduleType": "ondemand", "parameters": PARAMETERS,
            "activities": [{"name": "say", "type": "ShellCommandActivity", "vars": {"myShh": "#{*myToken}"},
                            **field}]}
    with pytest.raises(DefinitionError) as error:
        parse_pipeline(spec)
    assert any(str(p).startswith(message) for p in error.value.problems), error.value.problems


# ------------------------------------------------------------------ cached values stay untrusted
def test_a_variable_read_twice_is_deferred_both_times() -> None:
    """A value computed once and reused is as untrusted the second time (the scope caches it)."""
    spec = definition(command="echo #{myX}; echo #{myX}", defaults={"vars": {"myX": "#{myGreeting}"}})
    assert resolve(spec, myGreeting="$(id)").task.fields["command"] == \
        'echo "${DATAPIPELINE_VALUE_1}"; echo "${DATAPIPELINE_VALUE_1}"'


def test_a_variable_first_read_by_a_plain_field_is_still_deferred_in_the_command() -> None:
    spec = parse_pipeline({**_raw("echo #{myX}"), "defaults": {"vars": {"myX": "#{myGreeting}"}},
                           "activities": [{"name": "say", "type": "ShellCommandActivity", "command": "echo #{myX}",
                                           "stdout": "s3://b/#{myX}"}]})
    fields = resolve(spec, myGreeting="$(id)").task.fields
    assert fields["stdout"] == "s3://b/$(id)" and fields["command"] == 'echo "${DATAPIPELINE_VALUE_1}"'


def test_a_cached_value_cannot_reach_sql_unconstrained() -> None:
    spec = parse_pipeline({**_raw("true"), "databases": [
        {"name": "pg", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db/app", "username": "app",
         "passwordSecret": {"name": "pg", "key": "password"}}],
        "activities": [{"name": "sql", "type": "SqlActivity", "database": "pg", "scriptArgument": ["#{myX}"],
                        "script": "select 1 where x = '#{myX}'"}],
        "defaults": {"vars": {"myX": "#{myGreeting}"}}})
    with pytest.raises(ResolveError, match='parameter "myGreeting" is set by the run and would decide'):
        resolve(spec, "sql", myGreeting="' or 1=1; drop table t; --")


# ------------------------------------------------------------------ fields that decide what runs or where data goes
def _actions_spec(url: str, secret: str = "hooks") -> dict[str, Any]:
    return {**_raw("exit 1"), "actions": [{"name": "hook", "type": "Webhook", "url": url, "headersFromSecret": secret,
                        "subject": "failed", "message": "#{node.@id} failed"}],
            "activities": [{"name": "say", "type": "ShellCommandActivity", "command": "exit 1", "onFail": ["hook"]}]}


def test_a_run_cannot_send_an_alarm_or_a_secret_header_where_it_likes() -> None:
    from datapipeline.core.resolve import RunContext as Context

    spec = parse_pipeline(_actions_spec("#{myGreeting}"))
    context = Context(pipeline="p", run="r", scheduled_start=START, scheduled_end=END,
                      overrides={"myGreeting": "https://attacker.example/"})
    with pytest.raises(ResolveError, match=r'url: parameter "myGreeting" is set by the run and would decide'):
        resolve_command(spec, context, "action", "hook", "say", 1, node={"@status": "FAILED"})


def test_a_secret_name_is_never_computed() -> None:
    with pytest.raises(DefinitionError) as error:
        parse_pipeline(_actions_spec("https://hooks.example/", "#{myGreeting}"))
    assert [str(p) for p in error.value.problems] == [
        "spec.actions[0].headersFromSecret: is used as written, never evaluated (a Secret's name is not computed); "
        "write the name itself"]


def test_a_profile_is_never_computed() -> None:
    raw = {**_raw("true"), "computeProfiles": [{"name": "cp", "type": "ComputeProfile", "image": "#{myGreeting}"}],
           "defaults": {"runsOn": "cp"}}
    with pytest.raises(DefinitionError) as error:
        parse_pipeline(raw)
    assert "spec.computeProfiles[0].image: is used as written: a profile's fields are not evaluated" in \
        str(error.value.problems[0])


@pytest.mark.parametrize(("field", "value"), [("table", "#{myGreeting}"), ("connectionString", "#{myGreeting}")])
def test_table_names_and_connections_take_only_constrained_run_values(field: str, value: str) -> None:
    raw = {**_raw("true"), "databases": [{"name": "pg", "type": "JdbcDatabase",
                                           "connectionString": "jdbc:postgresql://db/app", "username": "app",
                                           "passwordSecret": {"name": "pg", "key": "password"}}],
           "dataNodes": [{"name": "t", "type": "SqlDataNode", "database": "pg", "table": "orders"}],
           "activities": [{"name": "say", "type": "ShellCommandActivity", "command": "true", "input": ["t"],
                           "stage": False}]}
    target = raw["dataNodes"][0] if field == "table" else raw["databases"][0]
    target[field] = value
    with pytest.raises(ResolveError, match=f'{field}: parameter "myGreeting" is set by the run'):
        resolve(parse_pipeline(raw), myGreeting='orders"; drop table x; --')


@pytest.mark.parametrize(("text", "state"), [
    ("true # don't\necho ", Quote.NONE), ("echo a#b '", Quote.SINGLE), ("# it's\n", Quote.NONE),
    ("cat <<EOF\nhello ", Quote.HEREDOC), ("cat <<'EOF'\nhi\nEOF\necho '", Quote.SINGLE),
    ("cat <<-EOF\n\tx\n\tEOF\necho ", Quote.NONE), ("cat <<< '", Quote.SINGLE),
])
def test_quote_state_knows_comments_and_here_documents(text: str, state: Quote) -> None:
    assert quote_state(text) is state


@pytest.mark.parametrize("command", [
    "true # don't\nprintf '%s' #{myGreeting}",
    "cat <<EOF\n#{myGreeting}\nEOF",
])
@pytest.mark.parametrize("value", HOSTILE)
def test_a_run_value_after_a_comment_or_in_a_here_document_is_text(command: str, value: str, tmp_path: Any) -> None:
    resolved = resolve(definition(command=command), myGreeting=value)
    out = subprocess.run(["/bin/sh", "-c", resolved.task.fields["command"]], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", **dict(resolved.env)}, cwd=tmp_path, check=True).stdout
    assert out.rstrip("\n") == value.rstrip("\n") if "EOF" in command else out == value
    assert not (tmp_path / "pwned-kdp").exists()
