import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart", 1)[1]
    blocks = re.findall(r"```bash\n(.*?)\n```", quick, flags=re.S)[:2]
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    assert "restore denoise datasets/samples" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1] in ci


def test_bundled_samples_are_present():
    samples = sorted((ROOT / "datasets" / "samples").glob("*.png"))
    assert len(samples) >= 4


def test_every_subpackage_is_listed_for_a_non_editable_install():
    """`pip install .` ships only the packages pyproject.toml names: a new subpackage must be listed."""
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = {v: k for k, v in cfg["package-dir"].items()}  # folder -> package name
    for top, name in dirs.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            pkg = ".".join([name, *rel.parts]) if rel.parts else name
            if "samples" not in rel.parts:
                assert pkg in listed, f"{pkg} ({init.parent}) is missing from pyproject.toml [tool.setuptools] packages"
