"""The config is validated on load, with one line naming the file, the place and the problem."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ctsentinel.config import ConfigError, load_config, parse_config

GOOD = """
database = "sqlite:///state/ct.db"
[logs]
list = "chrome"
start = "beginning"
[[watch]]
name = "cloudflare-dns"
domains = ["one.one.one.one", "Cloudflare-DNS.com.", "bücher.de", "*.example.org"]
ips = ["1.1.1.1", "1.0.0.1", "2606:4700:4700::/48"]
authorized_issuers = [
  "sha256:DE6B5FEA14555FE1CBB95C9D67501BB02DB54A59FE62E61AB07446A53D3367A1",
  "DigiCert Inc",
]
[[notify]]
kind = "webhook"
url = "http://127.0.0.1:9000/hook"
min_severity = "high"
"""


def test_good_config(tmp_path: Path) -> None:
    config = parse_config(GOOD, tmp_path / "ctsentinel.toml")
    assert config.database == f"sqlite:///{tmp_path}/state/ct.db"
    assert config.logs.start == "beginning"
    (watch,) = config.watches
    assert watch.domains == ("one.one.one.one", "cloudflare-dns.com", "xn--bcher-kva.de", "*.example.org")
    assert watch.ips[2] == ipaddress.ip_network("2606:4700:4700::/48")
    assert (
        watch.authorized_issuers[0].spki_sha256
        == "de6b5fea14555fe1cbb95c9d67501bb02db54a59fe62e61ab07446a53d3367a1"
    )
    assert watch.authorized_issuers[1].organization == "DigiCert Inc"
    assert config.notify[0].options == {"url": "http://127.0.0.1:9000/hook"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("1.0.0.1", "1.0.0.300"), "ips[1] '1.0.0.300' is not an IP address or CIDR range"),
        (("2606:4700:4700::/48", "1.1.1.1/8"), "ips[2] '1.1.1.1/8' is not an IP address or CIDR range"),
        (("authorized_issuers", "authorised_issuers"), "unknown key 'authorised_issuers'"),
        (("sha256:DE6B", "sha256:ZZ6B"), "authorized_issuers[0]"),
        (('start = "beginning"', 'start = "middle"'), "start must be"),
        (('kind = "webhook"', 'kind = "pager"'), "kind must be one of"),
        (('"one.one.one.one"', '"bad name.com"'), "domains[0] 'bad name.com' is not a domain name"),
        (("[logs]", "[logz]"), "unknown key 'logz'"),
        (('min_severity = "high"', 'min_severity = "urgent"'), "min_severity must be one of"),
        (
            ('database = "sqlite:///state/ct.db"', 'database = "mysql://x"'),
            "must be a sqlite:/// or postgresql://",
        ),
    ],
)
def test_bad_config_is_one_precise_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "c.toml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "c.toml"))


def test_missing_and_unparseable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("database = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_watch_needs_something_to_watch(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="watches nothing"):
        parse_config('[[watch]]\nname = "x"\n', tmp_path / "c.toml")


CA_WATCHES = (
    """
[[watch]]
name = "dns"
domains = ["example.com"]

[[ca_watch]]
name = "fina"
issuers = ["sha256:"""
    + "AB" * 32
    + """", "Financijska agencija"]
flag = ["ip_address", "lint_error"]
ignore_lint = ["cabf.internal_domain_name@uniformResourceIdentifier", "pkix.x"]
revocation = "all"

[[ca_watch]]
name = "everyone"
issuers = ["*"]

[[notify]]
kind = "stdout"
watches = ["fina"]
"""
)


def test_ca_watches(tmp_path: Path) -> None:
    from ctsentinel.watch.ca_policy import ALL_FLAGS, CaFlag, CaPolicy, LintIgnore, RevocationScope

    config = parse_config(CA_WATCHES, tmp_path / "c.toml")
    fina, everyone = config.ca_watches
    assert fina.name == "fina" and not fina.every_ca
    assert [i.text() for i in fina.issuers] == ["sha256:" + "ab" * 32, "Financijska agencija"]
    assert fina.flags == (CaFlag.IP_ADDRESS, CaFlag.LINT_ERROR)
    assert fina.ignore_lint == (LintIgnore("cabf.internal_domain_name", "uniformResourceIdentifier"),
                                LintIgnore("pkix.x"))  # fmt: skip
    assert fina.revocation is RevocationScope.ALL
    assert everyone.every_ca and everyone.issuers == () and everyone.revocation is RevocationScope.ALERTS
    watches = {w.name: w for w in CaPolicy.from_config(config.ca_watches)._watches}
    assert watches["everyone"].flags == frozenset(ALL_FLAGS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('issuers = ["*"]', 'issuers = ["*", "X"]'),
            "[[ca_watch]] 'everyone': issuers: \"*\" already selects",
        ),
        (('issuers = ["*"]', "issuers = []"), "[[ca_watch]] 'everyone': issuers is required"),
        (('flag = ["ip_address", "lint_error"]', 'flag = ["ip"]'), "flag[0] 'ip' is not one of ip_address"),
        (('flag = ["ip_address", "lint_error"]', "flag = []"), "flag = [] flags nothing"),
        (('revocation = "all"', 'revocation = "some"'), 'revocation must be "alerts" or "all"'),
        (('"pkix.x"]', '"pkix.x@"]'), "ignore_lint[1]: 'pkix.x@' is not a lint code"),
        (('name = "everyone"', 'name = "dns"'), "[[watch]] and [[ca_watch]] name 'dns' is used twice"),
        (('watches = ["fina"]', 'watches = ["nobody"]'), "which no [[watch]] or [[ca_watch]] defines"),
        (
            ('revocation = "all"', 'revocation = "all"\nflags = []'),
            "[[ca_watch]] 'fina': unknown key 'flags'",
        ),
    ],
)
def test_bad_ca_watch_is_one_precise_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = CA_WATCHES.replace(*change)
    assert text != CA_WATCHES
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "c.toml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


NUMBERS = [
    ("[logs]", "poll_interval"),
    ("[logs]", "refresh_interval"),
    ("[logs]", "requests_per_second"),
    ("[monitor]", "deliver_timeout"),
    ("[monitor]", "max_lag"),
    ("[web]", "time_limit"),
]
CHANNEL_NUMBERS = [
    ('kind = "webhook"\nurl = "http://127.0.0.1:9/hook"', "timeout"),
    ('kind = "email"\nhost = "h"\nfrom = "a@b.c"\nto = "d@e.f"', "timeout"),
    ('kind = "exec"\ncommand = "/bin/true"', "timeout"),
    ('kind = "stdout"', "retry_base"),
    ('kind = "stdout"', "retry_cap"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-nan"])
@pytest.mark.parametrize(("table", "key"), NUMBERS)
def test_numbers_must_be_finite(tmp_path: Path, table: str, key: str, value: str) -> None:
    """TOML has nan and inf: a nan requests_per_second turned rate limiting off and a nan poll_interval
    made a busy loop. Every number is refused unless finite, in one line naming the key."""
    config = tmp_path / "ctsentinel.toml"
    config.write_text(f"{table}\n{key} = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    shown = format(float(value), "g")  # -nan is shown as nan
    assert str(caught.value) == f"{config.resolve()}: {table}: {key} must be a finite number, not {shown}"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("table", "key"), CHANNEL_NUMBERS)
def test_channel_numbers_must_be_finite(tmp_path: Path, table: str, key: str, value: str) -> None:
    from ctsentinel.errors import UserError
    from ctsentinel.notify import build_channels

    config = tmp_path / "ctsentinel.toml"
    config.write_text(f"[[notify]]\n{table}\n{key} = {value}\n")
    with pytest.raises(UserError) as caught:
        build_channels(load_config(config).notify)
    assert str(caught.value).endswith(f": {key} must be a finite number, not {value}")
    assert str(caught.value).startswith("[[notify]] #1 ") and "\n" not in str(caught.value)


def test_run_refuses_a_nan_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ctsentinel.cli import main

    config = tmp_path / "ctsentinel.toml"
    config.write_text('[logs]\nlist = "nowhere.json"\npoll_interval = nan\n')
    assert main(["-c", str(config), "run", "--once"]) == 1
    assert capsys.readouterr().err == (
        f"ctsentinel: {config.resolve()}: [logs]: poll_interval must be a finite number, not nan\n"
    )
SECRET = "s3cret-token-0123456789abcdef"


def test_web_token_inline_and_from_a_private_file(tmp_path: Path) -> None:
    config = parse_config(GOOD + f'[web]\ntoken = "{SECRET}"\ntoken_for_reads = true\n', tmp_path / "c.toml")
    assert config.web.token == SECRET and config.web.token_for_reads and config.web.time_limit == 1.0
    assert SECRET not in repr(config)  # never shown, even by accident
    (tmp_path / "token").write_text(SECRET + "\n")
    (tmp_path / "token").chmod(0o600)
    config = parse_config(GOOD + '[web]\ntoken_file = "token"\ntime_limit = 2.5\n', tmp_path / "c.toml")
    assert config.web.token == SECRET and config.web.time_limit == 2.5
    assert parse_config(GOOD, tmp_path / "c.toml").web.token is None
    assert parse_config(GOOD, tmp_path / "c.toml").monitor.metrics_port == 0


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ('[web]\ntoken = "short"\n', "at least 16 characters"),
        (f'[web]\ntoken = "{SECRET}"\ntoken_file = "token"\n', "not both"),
        ("[web]\ntoken_for_reads = true\n", "token_for_reads needs a token"),
        ('[web]\ntoken_file = "missing"\n', "does not exist"),
        ('[web]\ntoken_file = "open"\n', "chmod 600"),
        (f'[web]\ntokn = "{SECRET}"\n', "unknown key 'tokn'"),
        ('[web]\ntoken_for_reads = "yes"\n', "token_for_reads must be true or false"),
        ("[web]\ntime_limit = 0\n", "time_limit must be at least"),
        ("[monitor]\nmetrics_port = 70000\n", "metrics_port must be a TCP port"),
    ],
)
def test_bad_web_config(tmp_path: Path, web: str, message: str) -> None:
    (tmp_path / "open").write_text(SECRET)
    (tmp_path / "open").chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        parse_config(
            GOOD.replace("[logs]", web + "[logs]", 1) if "[monitor]" in web else GOOD + web,
            tmp_path / "c.toml",
        )
    assert message in str(caught.value) and SECRET not in str(caught.value) and "\n" not in str(caught.value)
