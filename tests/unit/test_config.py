"""Bad configuration: every class of mistake exits 2 and names the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli.main import main
from controller.config import ConfigError, load_config

VALID = """
[http]
api_token = "t0ken"

[ami]
username = "callctl"
secret = "s3cret"

[ari]
username = "callctl"
password = "pa55"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "controller.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_loads_with_loopback_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.http.listen == "127.0.0.1"
    assert config.http.port == 8080
    assert config.ami.host == "127.0.0.1"
    assert config.ari.app == "callctl"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (VALID + "\n[bogus]\nx = 1\n", "bogus", "unknown key"),
        (VALID.replace('api_token = "t0ken"', 'api_token = "t0ken"\napi_tokn = "x"'),
         "http.api_tokn", "unknown key"),
        (VALID.replace('secret = "s3cret"', 'secret = ""'), "ami.secret", "at least 1"),
        (VALID.replace('secret = "s3cret"\n', ""), "ami.secret", "required key is missing"),
        (VALID.replace('api_token = "t0ken"', 'api_token = "t"\nport = "eighty"'),
         "http.port", "integer"),
        (VALID.replace('api_token = "t0ken"', 'api_token = "t"\nport = 70000'),
         "http.port", "less than or equal"),
        (VALID.replace('api_token = "t0ken"', 'api_token = "t"\nlisten = "localhost:80"'),
         "http.listen", "IP"),
        (VALID + '\n[store]\nurl = "mysql://db/x"\n', "store.url", "unsupported store URL"),
        (VALID + '\n[store]\nurl = "postgresql://db/x?pool_max=0"\n', "store.url",
         "pool_max must be"),
    ],
)
def test_each_mistake_names_its_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    paths = [path for path, _ in caught.value.problems]
    assert key in paths
    rendered = caught.value.render()
    assert f"{key}:" in rendered
    assert message.lower() in rendered.lower()


def test_check_config_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, VALID)
    assert main(["--config", str(good), "check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().out
    bad = write(tmp_path, VALID + "\n[ami2]\n")
    assert main(["--config", str(bad), "check-config"]) == 2
    assert "ami2: unknown key" in capsys.readouterr().err


def test_unreadable_and_malformed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "missing.toml"), "check-config"]) == 2
    assert "cannot read file" in capsys.readouterr().err
    broken = write(tmp_path, "[http\n")
    assert main(["--config", str(broken), "check-config"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[http]\napi_token = "caf\xe9"\n')
    assert main(["--config", str(latin), "check-config"]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_env_variable_names_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCTL_CONFIG", str(write(tmp_path, VALID)))
    assert main(["check-config"]) == 0
