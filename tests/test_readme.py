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
