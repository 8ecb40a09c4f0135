"""`dcc fmt`: the one canonical layout of a recipe, with every comment kept.

The layout (docs/formatting.md has it with examples):

* one statement per line; at most one blank line between statements (blank lines in the
  source are kept, collapsed to one), none at the start, exactly one newline at the end;
  `\\n` line endings;
* `recipe NAME`, `param NAME = value`, `use "path" as NAME`, `NAME = expr`,
  `pipeline NAME(a, b) = body`, `export expr to "path"`;
* calls `op(a=1, b="x")`: `, ` between arguments, no spaces around `=`; lists `[1, 2]`;
  dicts `{"k": v}` (keys always quoted); strings re-emitted with JSON escapes (non-ASCII
  kept as is), raw strings `r"..."` kept byte for byte; numbers keep their source text;
  parentheses are dropped (a pipe never needs them: `a | (b | c)` is `a | b | c`, and a pipe
  as an argument is written bare, `concat(a | f(), b)`);
* a line is at most 100 characters (comments not counted). A pipe that fits stays on one
  line, `a | b | c`; otherwise the head stays on the first line and each further stage goes
  on its own line as `  | stage`, two spaces deeper than the line the pipe starts on;
* a bracket (call, list, dict, parameter list) that does not fit, or that holds a comment or
  an `evolve` block, is broken one item per line, indented 4 more, each item followed by a
  comma, the closer back on the opening line's indentation;
* `evolve(seed, rounds=3) {` always opens a block: the chain below it, indented 4, and `}`
  on its own line. A pipeline body with two or more stages is laid out the same way below
  `pipeline NAME(args) =`: first stage indented 4, further stages as `  | stage`;
* comments: a full-line comment stays on its own line above the statement, stage, argument
  or item that follows it (at that element's indentation; blank lines before it are kept,
  collapsed to one, except right after an opening line); a comment at the end of a line
  stays at the end of the formatted line of the statement, stage, argument or item it
  followed (two spaces before `#`); a comment in a place that gets no line of its own (after
  `x =`, inside a dotted name, ...) moves above the element that holds it. Trailing white
  space of a comment is dropped; its text is otherwise never changed.

`format_text` refuses a recipe with syntax errors (RecipeError) and checks its own output:
it must parse to the same AST (spans aside) and hold the same comments, or it raises rather
than return text that means something else.

How: the recipe is parsed again by a small recursive descent over lark's tokens (the text is
known to parse, so newlines can be ignored) into a private tree whose "slots" (statement,
stage, argument, item) own comments; each comment is given to exactly one owner by token
position; a Wadler-style "flat if it fits, else broken" layout prints the tree. This module is
longer than the house ~400 lines on purpose: the token scan, the comment attachment and the
layout share that private tree, and splitting them would only turn it into an API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from dcc.compiler.parser import lex_all, parse
from dcc.errors import RecipeError
from dcc.spans import Span, register_source

WIDTH = 100
INDENT = 4
_COMMENT_WS = " \t\r\f"
_SURROGATE = re.compile("[\ud800-\udfff]")


# -- formatter syntax tree: nodes, plus "slots" that own comments ------------------------------


@dataclass(eq=False)
class _Comment:
    text: str
    blank: bool  # a blank line came before it in the source
    order: int  # position among the file's comments


@dataclass(eq=False)
class _Slot:
    """An element that gets its own line when its container breaks: a statement, a pipe stage,
    an argument, a list item, a dict pair or a pipeline parameter."""

    node: Any
    start: int  # token range (inclusive) of the element, commas and separators included
    end: int
    lead: range  # tokens whose preceding full-line comments it takes as leading comments
    ends: range  # tokens whose trailing (end of line) comment it takes
    takes_leading: bool = True
    depth: int = 0
    blank: bool = False
    leading: list[_Comment] = field(default_factory=list)
    trailing: _Comment | None = None


@dataclass(eq=False)
class _Atom:
    text: str


@dataclass(eq=False)
class _Seq:
    """Brackets holding slots: call arguments, list, dict, evolve or pipeline parameters."""

    head: str  # "op(", "[", "{", "evolve(", "pipeline name("
    close: str
    items: list[_Slot]
    open_comment: _Comment | None = None
    dangling: list[_Comment] = field(default_factory=list)  # before the closer


@dataclass(eq=False)
class _Arg:
    name: str | None
    value: Any


@dataclass(eq=False)
class _Pair:
    key: str
    value: Any


@dataclass(eq=False)
class _E:
    """A parsed expression with its token range (with parentheses) and its core range (the
    first and last token once parentheses and pipes are looked through)."""

    node: Any
    first: int
    last: int
    cf: int
    cl: int


@dataclass(eq=False)
class _Pipe:
    stages: list[_E]
    seps: list[int]  # the '|' tokens between stages
    first: int
    last: int
    block: bool = False  # evolve and pipeline bodies
    slots: list[_Slot] = field(default_factory=list)


@dataclass(eq=False)
class _Evolve:
    args: _Seq
    body: _Pipe
    brace_comment: _Comment | None = None
    dangling: list[_Comment] = field(default_factory=list)


@dataclass(eq=False)
class _Op:
    """A column expression's operator: binary (`left op right`) or unary (`not x`, `-x`)."""

    op: str
    left: Any  # None for a unary operator
    right: Any


@dataclass(eq=False)
class _Paren:
    """Parentheses around an operator expression: they can change its meaning, so they stay."""

    inner: Any


@dataclass(eq=False)
class _Simple:
    text: str


@dataclass(eq=False)
class _Assign:
    prefix: str  # "name = " or "param name = "
    value: Any


@dataclass(eq=False)
class _Export:
    value: Any
    path: str


@dataclass(eq=False)
class _PipelineDecl:
    params: _Seq
    body: _Pipe
    eq_comment: _Comment | None = None


# -- reading the token stream -----------------------------------------------------------------


def _string(tok: Any) -> str:
    if tok.type == "RAW_STRING":
        return tok.value
    return _quote(json.loads(tok.value))


def _quote(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    # a lone surrogate cannot be written as UTF-8: keep it as an escape
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Parser:
    """Recursive descent over the significant tokens of a recipe that is known to parse."""

    def __init__(self, toks: list[Any]) -> None:
        self.t = toks
        self.i = 0
        self.opens: dict[int, tuple[Any, str]] = {}  # token -> (node, attribute) for its comment
        self.closes: dict[int, list[_Comment]] = {}  # closer token -> dangling comment list

    def ty(self, k: int = 0) -> str:
        j = self.i + k
        return self.t[j].type if j < len(self.t) else "$END"

    def take(self, ty: str | None = None) -> int:
        if ty is not None and self.ty() != ty:
            raise AssertionError(f"formatter parser: expected {ty}, found {self.ty()}")
        self.i += 1
        return self.i - 1

    def val(self, idx: int) -> str:
        return str(self.t[idx].value)

    # statements ------------------------------------------------------------------------------
    def statement(self) -> _Slot:
        s = self.i
        ty = self.ty()
        ends_from: int | None = None
        if ty == "RECIPE":
            self.take()
            node: Any = _Simple(f"recipe {self.val(self.take('NAME'))}")
        elif ty == "USE":
            self.take()
            path = _string(self.t[self.take()])
            self.take("AS")
            node = _Simple(f"use {path} as {self.val(self.take('NAME'))}")
        elif ty == "PARAM":
            self.take()
            name = self.val(self.take("NAME"))
            self.take("EQUAL")
            e = self.expr()
            node, ends_from = _Assign(f"param {name} = ", e.node), e.cl
        elif ty == "EXPORT":
            self.take()
            e = self.expr()
            self.take("TO")
            node, ends_from = _Export(e.node, _string(self.t[self.take()])), e.cl
        elif ty == "PIPELINE":
            self.take()
            name = self.val(self.take("NAME"))
            params = self.seq(f"pipeline {name}(", self.take("LPAR"), "RPAR", ")", self.param)
            eq = self.take("EQUAL")
            e = self.expr()
            node, ends_from = _PipelineDecl(params, self.block(e)), e.cl
            self.opens[eq] = (node, "eq_comment")
        else:
            name = self.val(self.take("NAME"))
            self.take("EQUAL")
            e = self.expr()
            node, ends_from = _Assign(f"{name} = ", e.node), e.cl
        end = self.i - 1
        return _Slot(node, s, end, range(s, s + 1),
                     range(end if ends_from is None else ends_from, end + 1))

    # expressions -----------------------------------------------------------------------------
    def expr(self) -> _E:
        terms = [self.value()]
        seps: list[int] = []
        while self.ty() == "VBAR":
            seps.append(self.take())
            terms.append(self.value())
        if len(terms) == 1:
            return terms[0]
        stages: list[_E] = []
        all_seps: list[int] = []
        for j, t in enumerate(terms):
            if j:
                all_seps.append(seps[j - 1])
            if isinstance(t.node, _Pipe):  # a parenthesised pipe inside a pipe: same meaning
                stages.extend(t.node.stages)
                all_seps.extend(t.node.seps)
            else:
                stages.append(t)
        pipe = _Pipe(stages, all_seps, terms[0].first, terms[-1].last)
        return _E(pipe, terms[0].first, terms[-1].last, stages[0].cf, stages[-1].cl)

    def block(self, e: _E) -> _Pipe:
        if isinstance(e.node, _Pipe):
            pipe = e.node
            pipe.first, pipe.last = e.first, e.last
        else:
            pipe = _Pipe([e], [], e.first, e.last)
        pipe.block = True
        return pipe

    # column expressions, by precedence: or < and < not < comparison/in < + - < * / < unary -
    _LEVELS = (("OR",), ("AND",), (), ("CMP_OP", "IN"), ("PLUS", "MINUS"), ("STAR", "SLASH"))

    def value(self, level: int = 0) -> _E:
        if level == len(self._LEVELS):
            if self.ty() == "MINUS":
                return self.unary("-", level)
            return self.term()
        if level == 2:  # `not` is a prefix operator between `and` and comparisons
            if self.ty() == "NOT":
                return self.unary("not ", level)
            return self.value(level + 1)
        left = self.value(level + 1)
        while self.ty() in self._LEVELS[level]:
            op = self.t[self.take()]
            text = op.value if op.type != "IN" else "in"
            right = self.value(level + 1)
            left = _E(_Op(str(text), left.node, right.node), left.first, right.last, left.cf,
                      right.cl)
            if level == 3:  # comparisons do not chain
                break
        return left

    def unary(self, op: str, level: int) -> _E:
        i = self.take()
        e = self.value(level)
        return _E(_Op(op, None, e.node), i, e.last, i, e.cl)

    def term(self) -> _E:
        ty = self.ty()
        i = self.i
        if ty == "LPAR":
            self.take()
            e = self.expr()
            close = self.take("RPAR")
            if isinstance(e.node, (_Op, _Paren)):
                return _E(_Paren(e.node), i, close, i, close)
            return _E(e.node, i, close, e.cf, e.cl)
        if ty == "LSQB":
            node: Any = self.seq("[", self.take(), "RSQB", "]", self.item)
        elif ty == "LBRACE":
            node = self.seq("{", self.take(), "RBRACE", "}", self.pair)
        elif ty == "EVOLVE":
            self.take()
            args = self.seq("evolve(", self.take("LPAR"), "RPAR", ")", self.arg)
            brace = self.take("LBRACE")
            body = self.block(self.expr())
            close = self.take("RBRACE")
            node = _Evolve(args, body)
            self.opens[brace] = (node, "brace_comment")
            self.closes[close] = node.dangling
        elif ty in ("STRING", "RAW_STRING"):
            node = _Atom(_string(self.t[self.take()]))
        elif ty in ("NUMBER", "TRUE", "FALSE", "NULL"):
            node = _Atom(self.val(self.take()))
        else:
            names = [self.val(self.take("NAME"))]
            while self.ty() == "DOT":
                self.take()
                names.append(self.val(self.take("NAME")))
            name = ".".join(names)
            if self.ty() == "LPAR":
                node = self.seq(f"{name}(", self.take(), "RPAR", ")", self.arg)
            else:
                node = _Atom(name)
        last = self.i - 1
        return _E(node, i, last, i, last)

    def seq(self, head: str, open_idx: int, close_ty: str, close: str, item: Any) -> _Seq:
        slots: list[_Slot] = []
        while self.ty() != close_ty:
            start = self.i
            node, cf, cl = item()
            end = self.take() if self.ty() == "COMMA" else self.i - 1
            slots.append(_Slot(node, start, end, range(start, cf + 1), range(cl, end + 1)))
        close_idx = self.take(close_ty)
        seq = _Seq(head, close, slots)
        self.opens[open_idx] = (seq, "open_comment")
        self.closes[close_idx] = seq.dangling
        return seq

    def arg(self) -> tuple[Any, int, int]:
        name = None
        if self.ty() == "NAME" and self.ty(1) == "EQUAL":
            name = self.val(self.take())
            self.take()
        e = self.expr()
        return _Arg(name, e.node), e.cf, e.cl

    def item(self) -> tuple[Any, int, int]:
        e = self.expr()
        return e.node, e.cf, e.cl

    def pair(self) -> tuple[Any, int, int]:
        k = self.take()
        tok = self.t[k]
        key = _quote(str(tok.value)) if tok.type == "NAME" else _quote(_str_value(tok))
        self.take("COLON")
        e = self.expr()
        return _Pair(key, e.node), e.cf, e.cl

    def param(self) -> tuple[Any, int, int]:
        k = self.take("NAME")
        return _Atom(self.val(k)), k, k


def _str_value(tok: Any) -> str:
    return tok.value[2:-1] if tok.type == "RAW_STRING" else json.loads(tok.value)


def _child_slots(node: Any) -> list[_Slot]:
    """The slots directly inside `node` (creating a pipe's stage slots on first use)."""
    if isinstance(node, _Slot):
        return _child_slots(node.node)
    if isinstance(node, _Seq):
        return node.items
    if isinstance(node, (_Arg, _Pair)):
        return _child_slots(node.value)
    if isinstance(node, (_Assign, _Export)):
        return _child_slots(node.value)
    if isinstance(node, _PipelineDecl):
        return node.params.items + _child_slots(node.body)
    if isinstance(node, _Evolve):
        return node.args.items + _child_slots(node.body)
    if isinstance(node, _Op):
        return (_child_slots(node.left) if node.left is not None else []) + \
            _child_slots(node.right)
    if isinstance(node, _Paren):
        return _child_slots(node.inner)
    if isinstance(node, _Pipe):
        if not node.slots:
            n = len(node.stages)
            for k, st in enumerate(node.stages):
                start = node.seps[k - 1] if k else node.first
                end = node.seps[k] if k < n - 1 else node.last
                node.slots.append(_Slot(st.node, start, end, range(start, st.cf + 1),
                                        range(st.cl, end + 1), takes_leading=k > 0 or node.block))
        return node.slots
    return []


def _all_slots(root: _Slot) -> list[_Slot]:
    out = [root]
    todo = [root]
    while todo:
        slot = todo.pop()
        for child in _child_slots(slot):
            child.depth = slot.depth + 1
            out.append(child)
            todo.append(child)
    return out


def _attach_comments(root: _Slot, p: _Parser, before: list[list[_Comment]],
                     after: list[_Comment | None]) -> None:
    """Give every comment inside the statement (and just before it) to one owner."""
    slots = _all_slots(root)
    # per token: the outermost slot it leads or ends, and the innermost slot (taking leading
    # comments) that contains it; ties between the stages around a '|' go to the later stage
    leads: dict[int, _Slot] = {}
    ends: dict[int, _Slot] = {}
    inner: dict[int, _Slot] = {}
    for s in sorted(slots, key=lambda s: (s.depth, s.start)):
        for i in s.ends:
            ends.setdefault(i, s)
        if s.takes_leading:
            for i in s.lead:
                leads.setdefault(i, s)
            for i in range(s.start, s.end + 1):
                inner[i] = s

    touched: list[_Slot] = []
    for i in range(root.start, root.end + 1):
        for c in before[i]:
            if i in leads:
                leads[i].leading.append(c)
            elif i in p.closes:
                p.closes[i].append(c)
            else:
                inner[i].leading.append(c)
                touched.append(inner[i])
        tc = after[i]
        if tc is None:
            continue
        if i in p.opens and getattr(p.opens[i][0], p.opens[i][1]) is None:
            setattr(p.opens[i][0], p.opens[i][1], tc)
        elif i in ends and ends[i].trailing is None:
            ends[i].trailing = tc
        else:  # no line of its own in the canonical layout: move it above its element
            inner[i].leading.append(tc)
            touched.append(inner[i])
    for s in touched:
        s.leading.sort(key=lambda c: c.order)


# -- layout -----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Line:
    text: str
    comment: str | None = None


_NO: Any = object()


def _flat(node: Any, cache: dict[int, Any]) -> str | None:
    """The one-line form of `node`, or None when it cannot be on one line (it holds a comment
    or an evolve block)."""
    key = id(node)
    hit = cache.get(key, _NO)
    if hit is not _NO and hit[0] is node:
        return hit[1]
    out: str | None = None
    if isinstance(node, _Atom):
        out = node.text
    elif isinstance(node, _Arg):
        v = _flat(node.value, cache)
        out = None if v is None else (f"{node.name}={v}" if node.name else v)
    elif isinstance(node, _Pair):
        v = _flat(node.value, cache)
        out = None if v is None else f"{node.key}: {v}"
    elif isinstance(node, _Op):
        r = _flat(node.right, cache)
        if node.left is None:
            out = None if r is None else node.op + r
        else:
            left = _flat(node.left, cache)
            out = None if left is None or r is None else f"{left} {node.op} {r}"
    elif isinstance(node, _Paren):
        v = _flat(node.inner, cache)
        out = None if v is None else f"({v})"
    elif isinstance(node, _Seq):
        if node.open_comment is None and not node.dangling and not any(
                s.leading or s.trailing for s in node.items):
            parts = [_flat(s.node, cache) for s in node.items]
            if all(p is not None for p in parts):
                out = node.head + ", ".join(parts) + node.close  # type: ignore[arg-type]
    elif isinstance(node, _Pipe) and not any(s.leading or s.trailing for s in node.slots):
        parts = [_flat(s.node, cache) for s in node.slots]
        if all(p is not None for p in parts):
            out = " | ".join(parts)  # type: ignore[arg-type]
    cache[key] = (node, out)  # the entry keeps the node alive, so its id is not reused
    return out


class _Layout:
    def __init__(self) -> None:
        self.cache: dict[int, Any] = {}

    def flat(self, node: Any) -> str | None:
        return _flat(node, self.cache)

    def expr(self, node: Any, prefix: str, ind: int, suffix: int) -> list[_Line]:
        """Lines for `node` written after `prefix` (the start of its first line, indentation
        included); `suffix` characters will follow it on its last line; `ind` is the
        indentation of the line it starts on."""
        flat = self.flat(node)
        if flat is not None and (len(prefix) + len(flat) + suffix <= WIDTH
                                 or isinstance(node, _Atom)
                                 or (isinstance(node, _Seq) and not node.items)):
            return [_Line(prefix + flat)]
        if isinstance(node, _Seq):
            return self.seq(node, prefix, ind)
        if isinstance(node, _Pipe):
            return self.pipe(node, prefix, ind, suffix)
        if isinstance(node, _Evolve):
            return self.evolve(node, prefix, ind)
        if isinstance(node, _Op):
            return self.operator(node, prefix, ind, suffix)
        if isinstance(node, _Paren):
            lines = self.expr(node.inner, prefix + "(", ind, suffix + 1)
            lines[-1].text += ")"
            return lines
        raise AssertionError(f"cannot lay out {type(node).__name__}")

    def operator(self, node: _Op, prefix: str, ind: int, suffix: int) -> list[_Line]:
        """An operator expression too long for its line (or holding a comment): it breaks
        only inside the calls, lists and parentheses it holds; the operators stay inline."""
        if node.left is None:
            return self.expr(node.right, prefix + node.op, ind, suffix)
        if node.op in ("and", "or"):  # one condition per line, each led by its operator
            operands = _chain(node, node.op)
            lines = self.expr(operands[0], prefix, ind, 0)
            for k, operand in enumerate(operands[1:], 1):
                lines += self.expr(operand, " " * ind + f"{node.op} ", ind,
                                   suffix if k == len(operands) - 1 else 0)
            return lines
        lines = self.expr(node.left, prefix, ind, 0)
        last = lines.pop()
        if last.comment is not None:  # nothing may follow a comment on its line
            lines.append(last)
            last = _Line(" " * (ind + INDENT))
        return lines + self.expr(node.right, f"{last.text} {node.op} ", ind, suffix)

    def seq(self, seq: _Seq, prefix: str, ind: int) -> list[_Line]:
        lines = [_Line(prefix + seq.head, _text(seq.open_comment))]
        inner = ind + INDENT
        for k, slot in enumerate(seq.items):
            node = slot.node
            pad = " " * inner
            if isinstance(node, _Arg):
                head, value = (pad + f"{node.name}=" if node.name else pad), node.value
            elif isinstance(node, _Pair):
                head, value = pad + f"{node.key}: ", node.value
            else:
                head, value = pad, node
            body = self.expr(value, head, inner, 1)
            body[-1].text += ","
            lines += self.with_comments(slot, body, inner, allow_blank=k > 0)
        lines += _comment_lines(seq.dangling, inner, allow_blank=bool(seq.items))
        lines.append(_Line(" " * ind + seq.close))
        return lines

    def with_comments(self, slot: _Slot, body: list[_Line], ind: int,
                      allow_blank: bool) -> list[_Line]:
        leading = list(slot.leading)
        if slot.trailing is not None:
            if body[-1].comment is None:
                body[-1].comment = slot.trailing.text
            else:
                leading.append(slot.trailing)
        return _comment_lines(leading, ind, allow_blank) + body

    def pipe(self, pipe: _Pipe, prefix: str, ind: int, suffix: int) -> list[_Line]:
        head = pipe.slots[0]
        lines = self.with_comments(head, self.expr(head.node, prefix, ind, 0), ind, False)
        last = len(pipe.slots) - 1
        for k, slot in enumerate(pipe.slots[1:], 1):
            body = self.expr(slot.node, " " * (ind + 2) + "| ", ind + INDENT,
                             suffix if k == last else 0)
            lines += self.with_comments(slot, body, ind + 2, allow_blank=True)
        return lines

    def block(self, pipe: _Pipe, ind: int) -> list[_Line]:
        """A chain below an opening line: first stage indented 4, then `  | stage` lines."""
        lines: list[_Line] = []
        for k, slot in enumerate(pipe.slots):
            prefix = " " * (ind + INDENT) if k == 0 else " " * (ind + 2) + "| "
            body = self.expr(slot.node, prefix, ind + INDENT, 0)
            lines += self.with_comments(slot, body, ind + INDENT if k == 0 else ind + 2,
                                        allow_blank=k > 0)
        return lines

    def evolve(self, ev: _Evolve, prefix: str, ind: int) -> list[_Line]:
        flat = self.flat(ev.args)
        if flat is not None and (len(prefix) + len(flat) + 2 <= WIDTH or not ev.args.items):
            lines = [_Line(prefix + flat + " {")]
        else:
            lines = self.seq(ev.args, prefix, ind)
            lines[-1].text += " {"
        if ev.brace_comment is not None:
            lines[-1].comment = ev.brace_comment.text
        lines += self.block(ev.body, ind)
        lines += _comment_lines(ev.dangling, ind + INDENT, allow_blank=True)
        lines.append(_Line(" " * ind + "}"))
        return lines

    def statement(self, slot: _Slot) -> list[_Line]:
        node = slot.node
        if isinstance(node, _Simple):
            return [_Line(node.text)]
        if isinstance(node, _Assign):
            return self.expr(node.value, node.prefix, 0, 0)
        if isinstance(node, _Export):
            tail = f" to {node.path}"
            lines = self.expr(node.value, "export ", 0, len(tail))
            lines[-1].text += tail
            return lines
        assert isinstance(node, _PipelineDecl)
        body = node.body.slots
        block = len(body) > 1 or bool(body[0].leading) or node.eq_comment is not None
        flat = self.flat(node.params)
        if flat is not None and (len(flat) + 2 <= WIDTH or not node.params.items):
            header = [_Line(flat)]
        else:
            header = self.seq(node.params, "", 0)
        if block:
            header[-1].text += " ="
            header[-1].comment = _text(node.eq_comment)
            return header + self.block(node.body, 0)
        last = header.pop()
        return header + self.with_comments(body[0], self.expr(body[0].node, last.text + " = ", 0, 0),
                                           0, False)


def _chain(node: Any, op: str) -> list[Any]:
    """The operands of `a op b op c` (parsed left-associative), in order."""
    if isinstance(node, _Op) and node.op == op and node.left is not None:
        return [*_chain(node.left, op), node.right]
    return [node]


def _text(comment: _Comment | None) -> str | None:
    return None if comment is None else comment.text


def _comment_lines(comments: list[_Comment], ind: int, allow_blank: bool) -> list[_Line]:
    lines: list[_Line] = []
    for k, c in enumerate(comments):
        if c.blank and (k > 0 or allow_blank):
            lines.append(_Line(""))
        lines.append(_Line(" " * ind + c.text))
    return lines


def _render(lines: list[_Line]) -> str:
    return "".join(f"{ln.text}  {ln.comment}\n" if ln.comment else f"{ln.text}\n" for ln in lines)


@dataclass(eq=False)
class _Tokens:
    """The significant tokens of a file and, per token, the comments around it."""

    sig: list[Any] = field(default_factory=list)
    before: list[list[_Comment]] = field(default_factory=lambda: [[]])  # full-line, before it
    after: list[_Comment | None] = field(default_factory=list)  # at the end of its line
    blank: list[bool] = field(default_factory=list)  # a blank line came before it


def _scan(text: str) -> _Tokens:
    toks = _Tokens()
    newlines, order = 0, 0
    for tok in lex_all(text):
        if tok.type == "WS":
            continue
        if tok.type == "_NL":
            newlines += 1
            continue
        if tok.type == "COMMENT":
            c = _Comment(str(tok.value).rstrip(_COMMENT_WS), newlines >= 2, order)
            order += 1
            if newlines == 0 and toks.sig and toks.after[-1] is None:
                toks.after[-1] = c
            else:
                toks.before[-1].append(c)
        else:
            toks.sig.append(tok)
            toks.after.append(None)
            toks.before.append([])
            toks.blank.append(newlines >= 2)
        newlines = 0
    return toks


def _layout(text: str) -> str:
    toks = _scan(text)
    sig, before, after = toks.sig, toks.before, toks.after
    parser = _Parser(sig)
    out: list[str] = []

    def put(line: str, blank: bool) -> None:
        if blank and out and out[-1] != "\n":
            out.append("\n")
        out.append(line)

    layout = _Layout()
    while parser.i < len(sig):
        stmt = parser.statement()
        stmt.blank = toks.blank[stmt.start]
        _attach_comments(stmt, parser, before, after)
        lines = layout.statement(stmt)
        leading = list(stmt.leading)
        if stmt.trailing is not None:
            if lines[-1].comment is None:
                lines[-1].comment = stmt.trailing.text
            else:
                leading.append(stmt.trailing)
        for c in leading:
            put(c.text + "\n", c.blank)
        body = _render(lines)
        put(body, stmt.blank)
    for c in before[len(sig)]:
        put(c.text + "\n", c.blank)
    return "".join(out)


# -- checks and entry points ------------------------------------------------------------------


def strip_spans(obj: Any) -> Any:
    """`obj` (an AST value) as plain tuples with every Span left out, for comparing meaning."""
    if isinstance(obj, Span):
        return None
    if is_dataclass(obj) and not isinstance(obj, type):
        return (type(obj).__name__,) + tuple(
            (f.name, strip_spans(getattr(obj, f.name))) for f in fields(obj)
            if not isinstance(getattr(obj, f.name), Span))
    if isinstance(obj, (list, tuple)):
        return tuple(strip_spans(x) for x in obj)
    return obj


def comment_texts(text: str) -> list[str]:
    """Every comment of `text` (trailing white space dropped), in order."""
    return [str(t.value).rstrip(_COMMENT_WS) for t in lex_all(text) if t.type == "COMMENT"]


def format_text(text: str, path: str) -> str:
    r"""The canonical layout of a recipe that parses; RecipeError when it does not.

    >>> print(format_text('x=load.jsonl( "a.jsonl" )|select.length(field="t",min=5)  # keep\n'
    ...                   'export x to "o.jsonl"', "r.recipe"), end="")
    x = load.jsonl("a.jsonl") | select.length(field="t", min=5)  # keep
    export x to "o.jsonl"
    >>> print(format_text('grown = evolve(best, rounds=3) { gen() | judge(min=7) }', "r.recipe"))
    grown = evolve(best, rounds=3) {
        gen()
      | judge(min=7)
    }
    <BLANKLINE>
    """
    recipe, diags = parse(text, path)
    errors = [d for d in diags if d.is_error]
    if errors:
        raise RecipeError(errors)
    out = _layout(text)
    if out != text:
        again, diags2 = parse(out, path)
        register_source(path, text)  # diagnostics keep quoting the file as it is on disk
        same = (not any(d.is_error for d in diags2)
                and strip_spans(again.stmts) == strip_spans(recipe.stmts)
                and sorted(comment_texts(out)) == sorted(comment_texts(text)))
        if not same:
            raise RuntimeError(f"dcc fmt: internal error: the canonical layout of {path} would "
                               "change its meaning or lose a comment; the file is left as it "
                               "is (please report this)")
    return out


def format_file(path: str, write: bool) -> bool:
    """Whether formatting would change the file; with `write`, rewrite it atomically."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    out = format_text(text, path)
    if out == text:
        return False
    if write:
        _write_atomic(path, out)
    return True


def _write_atomic(path: str, text: str) -> None:
    from dcc.cache.atomic import atomic_file

    path = os.path.realpath(path)  # through a symlink: rewrite its target, keep the link
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        shutil.copymode(path, tmp)


__all__ = ["WIDTH", "comment_texts", "format_file", "format_text", "strip_spans"]
