"""The public API: every name of ``tsogpu.__all__`` resolves and is documented in docs/api.md,
and the documented example runs."""

import re
from pathlib import Path

import tsogpu

API_DOC = Path(__file__).parents[1] / "docs" / "api.md"


def test_every_public_name_resolves_and_is_documented():
    documented = set(re.findall(r"`([A-Za-z_]+)[`(]", API_DOC.read_text()))
    for name in tsogpu.__all__:
        assert getattr(tsogpu, name) is not None
        assert name == "__version__" or name in documented, f"{name} is not in docs/api.md"
    assert sorted(dir(tsogpu)) == sorted(tsogpu.__all__)


def test_unknown_name_is_an_attribute_error():
    try:
        tsogpu.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_documented_example_runs(tmp_path, monkeypatch):
    example = re.search(r"```python\n(.*?)```", API_DOC.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(example.replace('backend="auto"', 'backend="numpy"'), "api.md", "exec"), scope)
    assert scope["sci"].shape == (10, *scope["segment"].data.shape[2:])
    assert sorted(p.name.rsplit("_", 1)[1] for p in (tmp_path / "products").iterdir()) == [
        "rate.fits",
        "rateints.fits",
    ]
