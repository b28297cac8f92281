"""Parser for `edgetpu_compiler` console output and `<model>_edgetpu.log` files (compiler 2.0-16).

Lines are keyed by their own prefixes only: published output is hard-wrapped, CRLF, carries
shell prompts, and its layout changed between versions (2.0 has an "available" memory line and
no "remaining"; only 16 prints the timeout-timer and child-process lines; with `-d` failed tries
precede the final outcome; `-n`/co-compiling repeat the per-model block).
"""
import re
from dataclasses import dataclass, field
from typing import Optional

MAPPED = "Mapped to Edge TPU"
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
_SIZE = re.compile(r"^([\d.]+)\s*(B|KiB|MiB|GiB)$")
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_ERROR_PREFIXES = ("ERROR:", "Compilation failed:", "Internal compiler error", "libc++abi:")


def parse_size(text):
    """'604.50KiB' -> bytes (int); None if it is not a compiler size."""
    m = _SIZE.match(text.strip())
    return int(round(float(m.group(1)) * _UNITS[m.group(2)])) if m else None


@dataclass
class OpRow:
    op: str
    count: int
    status: str

    @property
    def mapped(self):
        return self.status == MAPPED


@dataclass
class CompiledModel:
    input_model: Optional[str] = None
    input_size: Optional[int] = None
    output_model: Optional[str] = None
    output_size: Optional[int] = None
    on_chip_used: Optional[int] = None
    on_chip_remaining: Optional[int] = None
    on_chip_available: Optional[int] = None     # compiler 2.0 layout
    off_chip_used: Optional[int] = None
    subgraphs: Optional[int] = None
    total_ops: Optional[int] = None
    tpu_ops: Optional[int] = None
    cpu_ops: Optional[int] = None
    operation_log: Optional[str] = None


@dataclass
class CompileReport:
    version: Optional[str] = None
    success: bool = False
    models: list = field(default_factory=list)       # CompiledModel per input (segments, co-compile)
    ops: list = field(default_factory=list)          # OpRow from the -s table or the .log
    errors: list = field(default_factory=list)
    compile_ms: Optional[int] = None

    @property
    def model(self):
        return self.models[-1] if self.models else None

    def mapped_ops(self):
        return sum(r.count for r in self.ops if r.mapped)

    def cpu_ops_by_reason(self):
        out = {}
        for r in self.ops:
            if not r.mapped:
                out.setdefault(r.status, {}).setdefault(r.op, 0)
                out[r.status][r.op] += r.count
        return out

    def __str__(self):
        lines = [f"edgetpu_compiler {self.version or '?'}: {'succeeded' if self.success else 'FAILED'}"]
        for m in self.models:
            lines.append(f"  {m.input_model} -> {m.output_model}: {m.subgraphs} subgraph(s), "
                         f"{m.tpu_ops}/{m.total_ops} ops on the Edge TPU, on-chip params "
                         f"{_fmt(m.on_chip_used)}, off-chip {_fmt(m.off_chip_used)}")
        for status, ops in self.cpu_ops_by_reason().items():
            lines.append(f"  on CPU ({status}): " + ", ".join(f"{o} x{n}" for o, n in ops.items()))
        for e in self.errors:
            lines.append(f"  error: {e}")
        return "\n".join(lines)


def _fmt(n):
    return "?" if n is None else f"{n / 2 ** 20:.2f} MiB"


def parse_table(lines):
    rows, in_table = [], False
    for line in lines:
        s = line.strip()
        if re.match(r"^Operator\s+Count\s+Status$", s):
            in_table = True
            continue
        if not in_table or not s:
            continue
        m = _ROW.match(s)
        if m:
            rows.append(OpRow(m.group(1), int(m.group(2)), m.group(3)))
        else:
            in_table = False
    return rows


def _runs(text):
    """Splits text holding several compiler invocations (e.g. pasted shell sessions) at version lines."""
    lines = text.replace("\r", "").split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip().startswith("Edge TPU Compiler version")] or [0]
    return [lines[a:b] for a, b in zip(starts, starts[1:] + [len(lines)])]


def parse_console(text):
    """CompileReport for the last compiler run in `text` (console output, stdout + stderr)."""
    lines = [l.strip() for l in _runs(text)[-1]]
    report = CompileReport()
    last_outcome, last_timer, last_compiled, error_pos = None, -1, -1, []
    model = None
    for i, s in enumerate(lines):
        if s.startswith("Edge TPU Compiler version"):
            report.version = s.split()[-1]
        elif s.startswith("Started a compilation timeout timer"):
            last_timer = i
        elif s in ("Compilation succeeded!", "Compilation failed!"):
            last_outcome = (i, s == "Compilation succeeded!")
        elif re.match(r"^Models? compiled successfully in (\d+) ms", s):
            last_compiled = i
            report.compile_ms = int(re.findall(r"\d+", s)[0])
        elif s.startswith(_ERROR_PREFIXES) or "Segmentation fault" in s:
            report.errors.append(s)
            error_pos.append(i)
        elif s.startswith("Input model:"):
            model = CompiledModel(input_model=s.split(":", 1)[1].strip())
            report.models.append(model)
        elif model is not None and ":" in s:
            key, value = (p.strip() for p in s.split(":", 1))
            _set_model_field(model, key, value)
    report.ops = parse_table(lines)
    for m in report.models:
        if m.total_ops is not None and m.tpu_ops is None and not any(not r.mapped for r in report.ops):
            m.tpu_ops, m.cpu_ops = m.total_ops, 0   # all-mapped runs print no per-processor counts
    if last_outcome and last_outcome[0] > last_timer:
        report.success = last_outcome[1]
    else:   # pre-16 output has no closing line; a v16 fragment may stop early
        report.success = last_compiled >= 0 and not any(p > max(last_compiled, last_timer) for p in error_pos) \
            and not any(e.startswith("Internal compiler error") for e in report.errors)
        if last_timer > last_compiled:
            report.success = False    # a later compilation (next segment) started and did not finish
    return report


def _set_model_field(model, key, value):
    sizes = {"Input size": "input_size", "Output size": "output_size",
             "On-chip memory used for caching model parameters": "on_chip_used",
             "On-chip memory remaining for caching model parameters": "on_chip_remaining",
             "On-chip memory available for caching model parameters": "on_chip_available",
             "Off-chip memory used for streaming uncached model parameters": "off_chip_used"}
    ints = {"Number of Edge TPU subgraphs": "subgraphs", "Total number of operations": "total_ops",
            "Number of operations that will run on Edge TPU": "tpu_ops",
            "Number of operations that will run on CPU": "cpu_ops"}
    if key in sizes:
        setattr(model, sizes[key], parse_size(value))
    elif key in ints and value.isdigit():
        setattr(model, ints[key], int(value))
    elif key == "Output model":
        model.output_model = value
    elif key == "Operation log":
        model.operation_log = value


def parse_log(text):
    """CompileReport from a `<model>_edgetpu.log` (version, input/output names, op table)."""
    lines = [l.strip() for l in text.replace("\r", "").split("\n")]
    report = CompileReport(success=True)
    model = CompiledModel()
    for s in lines:
        if s.startswith("Edge TPU Compiler version"):
            report.version = s.split()[-1]
        elif s.startswith("Input:"):
            model.input_model = s.split(":", 1)[1].strip()
        elif s.startswith("Output:"):
            model.output_model = s.split(":", 1)[1].strip()
    report.ops = parse_table(lines)
    model.total_ops = sum(r.count for r in report.ops)
    model.tpu_ops = report.mapped_ops()
    model.cpu_ops = model.total_ops - model.tpu_ops
    report.models.append(model)
    return report
