"""A griffe extension for the API reference (``mkdocs.yml``): reST in jaxsnn's docstrings to Markdown.

jaxsnn's docstrings are Google style ("Args:", "Returns:") written with reST roles and
directives, and their ``>>>`` examples stand in the text (the doctests run them). mkdocstrings
renders Markdown, so this extension rewrites each docstring's text before it is parsed; the
sources stay as they are:

* a section header ("Returns:", "Raises:", ...) right after a line of text gets the blank line
  before it that griffe needs to see a section;
* ``:func:`x``` (and ``:class:``, ``:mod:``, ``:meth:``, ``:attr:``, ``:data:``, ``:obj:``,
  ``:exc:``; ``~`` shows the last name only) becomes the code ``x``, linked to its entry of the
  reference when ``x`` names a jaxsnn object (relative names are looked up from the docstring's
  object outwards, as Sphinx does);
* ``:math:`...``` becomes inline math, a ``.. math::`` directive a display block (with an
  ``aligned`` environment when it has ``&`` or ``\\``), both typeset by MathJax through
  ``pymdownx.arithmatex``;
* a run of ``>>>`` lines with their output becomes a ``pycon`` code block;
* a reST simple table (``=====  =====`` borders) becomes a Markdown table;
* a paragraph ending in ``::`` (a reST literal block follows) ends in ``:``;
* in an "Args:" or "Attributes:" section, an entry that names several arguments (``a, b: ...``,
  possibly over two lines) becomes one entry for each, and a line of prose that names no argument
  is moved after the section.
"""

from __future__ import annotations

import re
import textwrap

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`(~?)([^`]+?)`")
MATH = re.compile(r":math:`([^`]+)`")
DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters|Other Parameters|Keyword Args|Attributes):\s*$")
TABLE_BORDER = re.compile(r"^\s*=+(\s+=+)+\s*$")
SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Other Parameters|Keyword Args|Attributes|Returns|Yields|Raises"
                     r"|Warns|Examples?|Notes?):\s*$")
NAME_LIST = re.compile(r"^[\w\s,*.]+,$")  # an entry's names that go on on the next line
NAMES = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)+$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class RstToMarkdown(griffe.Extension):
    """Rewrite the docstrings of every object of the loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        self._collection = loader.modules_collection
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            obj.docstring.value = self.convert(obj.docstring.value, obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member)

    # -- the conversion ------------------------------------------------------------------------

    def convert(self, text: str, obj: griffe.Object) -> str:
        lines = []
        for line in text.splitlines():  # griffe reads a section only after a blank line
            if SECTION.match(line) and lines and lines[-1].strip():
                lines.append("")
            lines.append(line)
        lines = self._simple_tables(self._math_blocks(self._fence_doctests(lines)))
        # the text between code fences, where roles and inline math may span lines
        parts = re.split(r"(^[ \t]*```.*?^[ \t]*```[ \t]*$)", "\n".join(lines), flags=re.M | re.S)
        for k in range(0, len(parts), 2):
            part = MATH.sub(lambda m: r"\(" + " ".join(m.group(1).split()) + r"\)", parts[k])
            part = ROLE.sub(lambda m: self._reference(m.group(1), " ".join(m.group(2).split()), obj), part)
            parts[k] = re.sub(r"(?<=\S)::$", ":", part, flags=re.M)
        return "\n".join(self._args_sections("".join(parts).splitlines()))

    def _reference(self, tilde: str, target: str, obj: griffe.Object) -> str:
        target = target.rstrip("()")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        path = self._resolve(target, obj)
        if path is None:
            return f"`{shown}`"
        return f'<autoref identifier="{path}" optional>`{shown}`</autoref>'

    def _resolve(self, target: str, obj: griffe.Object) -> str | None:
        """The canonical path of the jaxsnn object ``target`` names from ``obj``, or None."""
        scopes, scope = [], obj
        while scope is not None:
            scopes.append(scope.path + ".")
            scope = scope.parent
        for prefix in scopes + [""]:
            try:
                found = self._collection.get_member(prefix + target)
            except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            try:
                path = found.final_target.path if found.is_alias else found.path
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
            return path if path.split(".")[0] == "jaxsnn" else None
        return None

    @staticmethod
    def _fence_doctests(lines: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(lines):
            stripped = lines[i].lstrip()
            if not stripped.startswith(">>>"):
                out.append(lines[i])
                i += 1
                continue
            pad = lines[i][: len(lines[i]) - len(stripped)]
            if out and out[-1].strip():
                out.append("")
            out.append(pad + "```pycon")
            while i < len(lines) and lines[i].strip() and lines[i].startswith(pad):
                out.append(lines[i])
                i += 1
            out += [pad + "```", ""]
        return out

    @staticmethod
    def _math_blocks(lines: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(lines):
            match = DIRECTIVE.match(lines[i])
            if match is None:
                out.append(lines[i])
                i += 1
                continue
            pad, first = match.groups()
            body = [first] if first else []
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(pad)):
                body.append(lines[i])
                i += 1
            tex = textwrap.dedent("\n".join(body)).strip()
            if "&" in tex or "\\\\" in tex:
                tex = "\\begin{aligned}\n" + tex + "\n\\end{aligned}"
            if out and out[-1].strip():
                out.append("")
            if 0 < len(pad) < 4:  # in a list item, whose blocks Markdown wants indented by 4
                pad = " " * 4
            out += [pad + "$$"] + [pad + t for t in tex.splitlines()] + [pad + "$$", ""]
        return out

    @staticmethod
    def _simple_tables(lines: list[str]) -> list[str]:
        """reST simple tables (``===  ===`` borders above and below the header and at the end)."""
        out, i = [], 0
        while i < len(lines):
            if not (TABLE_BORDER.match(lines[i]) and i + 2 < len(lines) and lines[i + 2] == lines[i]):
                out.append(lines[i])
                i += 1
                continue
            border = lines[i]
            spans = [m.span() for m in re.finditer(r"=+", border)]
            end = next((k for k in range(i + 3, len(lines)) if lines[k] == border), None)
            if end is None:
                out.append(lines[i])
                i += 1
                continue

            def row(line: str) -> str:
                cells = [line[a:b if n + 1 < len(spans) else None].strip() for n, (a, b) in enumerate(spans)]
                # a "|" in a cell would end it: \vert in math, escaped elsewhere
                cells = [MATH.sub(lambda m: ":math:`" + m.group(1).replace("|", r"\vert ") + "`", c) for c in cells]
                return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

            pad = border[: _indent(border)]
            if out and out[-1].strip():
                out.append("")
            out += [pad + row(lines[i + 1]), pad + "|" + "---|" * len(spans)]
            out += [pad + row(line) for line in lines[i + 3:end] if line.strip()] + [""]
            i = end + 1
        return out

    @staticmethod
    def _args_sections(lines: list[str]) -> list[str]:
        out, i = [], 0
        while i < len(lines):
            header = ARGS_HEADER.match(lines[i])
            out.append(lines[i])
            i += 1
            if header is None:
                continue
            section = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(header.group(1))):
                section.append(lines[i])
                i += 1
            trailing = []  # the blank lines that end the section stay after it
            while section and not section[-1].strip():
                trailing.append(section.pop())
            item = min((_indent(s) for s in section if s.strip()), default=0)
            entries, kept, moved = [], [], []
            for line in section:  # an entry: its first line and the more indented lines after it
                if line.strip() and _indent(line) == item or not entries:
                    entries.append([line])
                else:
                    entries[-1].append(line)
            for entry in entries:
                if ":" not in entry[0] and NAME_LIST.match(entry[0].strip()) and any(":" in e for e in entry[1:]):
                    k = next(n for n, e in enumerate(entry) if ":" in e)  # names over several lines: join them
                    entry = [" " * item + " ".join(e.strip() for e in entry[: k + 1])] + entry[k + 1:]
                names, colon, rest = entry[0].strip().partition(":")
                if not colon:  # prose, no argument: after the section
                    moved.append(" ".join(e.strip() for e in entry))
                elif "," in names and NAMES.match(names):  # "a, b: ...": one entry each
                    for name in (n.strip() for n in names.split(",") if n.strip()):
                        kept += [" " * item + name + ":" + rest] + entry[1:]
                else:
                    kept += entry
            out += kept
            if moved:
                out += [""] + [header.group(1) + m for m in moved]
            out += trailing or ([""] if moved else [])
        return out
