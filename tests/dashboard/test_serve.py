"""``bptt-explorer`` (dashboard.serve): the command it runs, the project's Streamlit settings passed as
options from the one packaged file, and clear refusals. Serving for real, from an installed copy in
another folder, is tests/test_install.py's."""

from __future__ import annotations

import tomllib

import pytest
from streamlit import config as streamlit_config

from dashboard import page_table, serve

SETTINGS = tomllib.loads(serve.CONFIG.read_text())


def test_the_checkout_reads_the_same_settings_file():
    """`streamlit run app.py` reads .streamlit/config.toml in the checkout: it is the packaged file."""
    checkout = page_table.HOME / ".streamlit" / "config.toml"
    assert checkout.read_bytes() == serve.CONFIG.read_bytes()


def test_every_setting_is_a_streamlit_option_it_accepts_on_the_command_line():
    options = streamlit_config.get_config_options()
    flags = serve.config_flags()
    keys = [f[2:].split("=", 1)[0] for f in flags]
    assert keys and set(keys) <= set(options), set(keys) - set(options)
    assert not [k for k in keys if options[k].sensitive]  # Streamlit refuses those as flags


@pytest.mark.parametrize(("section", "key"), [(s, k) for s, table in SETTINGS.items() for k in table])
def test_each_setting_becomes_one_option_with_its_value(section, key):
    value = SETTINGS[section][key]
    text = str(value).lower() if isinstance(value, bool) else str(value)
    assert serve.config_flags().count(f"--{section}.{key}={text}") == 1


def test_nested_tables_and_lists(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[server]\nfolderWatchList = ["a", "b"]\n[theme.sidebar]\nbackgroundColor = "#fff"\n')
    assert serve.config_flags(path) == [
        "--server.folderWatchList=a",
        "--server.folderWatchList=b",
        "--theme.sidebar.backgroundColor=#fff",
    ]


def test_the_command_runs_the_installed_router_with_the_settings_then_the_port():
    cmd = serve.command(["--port", "8600", "--address", "127.0.0.1"])
    assert cmd[1:5] == ["-m", "streamlit", "run", str(serve.ROUTER)]
    assert serve.ROUTER.name in page_table.ROUTER_SCRIPTS and serve.ROUTER.is_file()
    assert cmd[5:-2] == serve.config_flags()
    assert cmd[-2:] == ["--server.port=8600", "--server.address=127.0.0.1"]  # last: they win
    assert serve.command([]) == cmd[:-2]  # Streamlit's own defaults


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1", "80.5"])
def test_a_bad_port_is_refused_with_status_2(port, capsys):
    with pytest.raises(SystemExit) as e:
        serve.main(["--port", port])
    assert e.value.code == 2
    assert "from 1 to 65535" in capsys.readouterr().err


def test_without_streamlit_it_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(serve.os, "execv", lambda *a: pytest.fail("must not start anything"))
    assert serve.main(["--port", "8600"]) == serve.EXIT_MISSING
    assert "needs the optional package streamlit" in capsys.readouterr().err


def test_main_hands_the_process_to_streamlit(monkeypatch):
    seen = []
    monkeypatch.setattr(serve.os, "execv", lambda exe, argv: seen.append((exe, argv)))
    serve.main(["--port", "8600"])
    ((exe, argv),) = seen
    assert argv == serve.command(["--port", "8600"]) and exe == argv[0]


def test_page_scripts_lie_beside_the_router_in_the_checkout():
    """In the checkout, HOME is the repository root (pages/ beside app.py); installed, the package
    (pages/ beside router.py: tests/test_install.py serves every page from there)."""
    assert (page_table.HOME / "app.py").is_file()
    for p in page_table.PAGES:
        assert (page_table.HOME / p.file).is_file(), p.file
