"""Write an evaluation: `metrics.json` for machines, `report.html` (+ `figures/*.png`) for people.

The HTML page shows the protocol, the aggregate numbers, metrics that could not run and why, per-file problems, a
bar chart per metric over videos, a table of every video's values (scrolling sideways inside the page when it is
wider), and the worst frame (lowest SSIM) of the worst videos side by side with the ground truth and their
difference. Every file is written atomically; plots use matplotlib's Agg backend.

`check_report_dir` is meant to run before any network is loaded or video decoded: a report folder that cannot be
written should fail the run at once, not after the metrics were computed.
"""

from __future__ import annotations

import html
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from ..io.outputs import check_outputs
from .evaluator import EvaluationResult
from .measure import Thumbnail

# Metrics charted per video: (path into a video's metrics, direction that is better).
BAR_METRICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("psnr",), "higher"),
    (("ssim",), "higher"),
    (("lpips_alex",), "lower"),
    (("lpips_vgg",), "lower"),
    (("mae",), "lower"),
    (("l1",), "lower"),
    (("pose", "pck@0.1"), "higher"),
    (("pose", "pose_distance"), "lower"),
    (("temporal", "warp_error"), "lower"),
)


def _lookup(values: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def bar_chart(videos: dict[str, dict[str, Any]]) -> bytes | None:
    """One horizontal bar panel per metric that some video has; None if no video was measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = {name: v.get("metrics", {}) for name, v in videos.items() if v.get("status") == "ok"}
    panels = [(m, d) for m, d in BAR_METRICS if any(_lookup(v, m) is not None for v in measured.values())]
    if not panels:
        return None
    names = list(measured)
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    height = max(2.5, 0.3 * len(names) + 1.2)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, height * rows), squeeze=False)
    for ax, (metric, better) in zip(axes.flat, panels, strict=False):
        values = [_lookup(measured[n], metric) for n in names]
        shown = [v if v is not None else 0.0 for v in values]
        bars = ax.barh(range(len(names)), shown, color=["#4c72b0" if v is not None else "#cccccc" for v in values])
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{'.'.join(metric)} ({better} is better)", fontsize=10)
        for bar, value in zip(bars, values, strict=True):
            label = f" {value:.4g}" if value is not None else " n/a"
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    figure.tight_layout()
    return _png(figure)


def worst_case_figure(thumb: Thumbnail) -> bytes:
    """Generated | ground truth | |difference| for one frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen, ref = thumb.generated, thumb.ground_truth
    diff = np.abs(gen.astype(np.int16) - ref.astype(np.int16)).mean(axis=-1)
    aspect = gen.shape[1] / gen.shape[0]
    figure, axes = plt.subplots(1, 3, figsize=(3 * 3 * aspect + 0.5, 3.4))
    axes[0].imshow(gen)
    axes[0].set_title("generated", fontsize=9)
    axes[1].imshow(ref)
    axes[1].set_title("ground truth", fontsize=9)
    axes[2].imshow(diff, cmap="magma", vmin=0, vmax=255)
    axes[2].set_title("|difference|", fontsize=9)
    for ax in axes:
        ax.axis("off")
    figure.suptitle(f"{thumb.video}: frame {thumb.frame}, SSIM {thumb.ssim:.3f}", fontsize=10)
    return _png(figure)


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return html.escape(str(value))


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, (list, str)):
            out[f"{prefix}{key}"] = value
    return out


def render_html(data: dict[str, Any], figures: dict[str, str]) -> str:
    protocol = data["protocol"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>dynamictrl evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f0f0f0}"
        "td.l,th.l{text-align:left}.err{color:#b00}.warn{color:#a60}img{max-width:100%}"
        ".scroll{overflow-x:auto;max-width:100%}</style></head><body>",
        f"<h1>Evaluation ({html.escape(protocol['name'])} protocol)</h1>",
        f"<p>{html.escape(protocol['description'])}</p>",
        f"<p>Generated: <code>{html.escape(data['generated_dir'])}</code> &nbsp; Ground truth: "
        f"<code>{html.escape(data['reference_dir'])}</code> &nbsp; {html.escape(data['created'])}</p>",
        "<h2>Aggregate</h2><table><tr><th class='l'>metric</th><th>value</th></tr>",
    ]
    aggregate = data["aggregate"]
    unreliable_fid = aggregate.get("fid_reliable") is False
    for key, value in _flatten(aggregate).items():
        mark = (
            " <span class='warn'>(unreliable: too few frames, see below)</span>"
            if key == "fid" and unreliable_fid
            else ""
        )
        parts.append(f"<tr><td class='l'>{html.escape(key)}</td><td>{_format(value)}{mark}</td></tr>")
    parts.append("</table>")
    if unreliable_fid:
        parts.append(f"<p class='warn'>{html.escape(str(aggregate.get('fid_note', 'FID is unreliable')))}</p>")
    if data["unavailable"]:
        parts.append("<h2>Not computed</h2><ul>")
        parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in data["unavailable"].items()]
        parts.append("</ul>")
    if data["problems"]:
        parts.append(
            "<h2>Problems</h2><table><tr><th class='l'>video</th><th class='l'>severity</th>"
            "<th class='l'>message</th></tr>"
        )
        for p in data["problems"]:
            css = "err" if p["severity"] == "error" else "warn"
            parts.append(
                f"<tr class='{css}'><td class='l'>{html.escape(p['video'])}</td><td class='l'>"
                f"{p['severity']}</td><td class='l'>{html.escape(p['message'])}</td></tr>"
            )
        parts.append("</table>")
    if "bars" in figures:
        parts.append(f"<h2>Per video</h2><img src='{figures['bars']}' alt='per-video metrics'>")
    rows = {n: _flatten(v.get("metrics", {})) for n, v in data["videos"].items() if v.get("status") == "ok"}
    columns = [c for c in dict.fromkeys(k for r in rows.values() for k in r) if not c.startswith("pose.parts.")]
    if rows:  # one column per metric: wider than the page with every group on, so it scrolls inside its box
        parts.append(
            "<div class='scroll'><table><tr><th class='l'>video</th>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        )
        for name, row in rows.items():
            cells = "".join(f"<td>{_format(row.get(c))}</td>" for c in columns)
            parts.append(f"<tr><td class='l'>{html.escape(name)}</td>{cells}</tr>")
        parts.append("</table></div>")
    worst = [k for k in figures if k.startswith("worst")]
    if worst:
        parts.append("<h2>Worst cases: the lowest-SSIM frames (one per video, worst first)</h2>")
        parts += [f"<p><img src='{figures[k]}' alt='{html.escape(k)}'></p>" for k in worst]
    parts.append("<h2>Protocol</h2><table>")
    for key, value in protocol.items():
        shown = "<br>".join(html.escape(str(v)) for v in value) if isinstance(value, (list, tuple)) else _format(value)
        parts.append(f"<tr><td class='l'>{html.escape(key)}</td><td class='l'>{shown}</td></tr>")
    parts.append("</table><h2>Weights and versions</h2><table>")
    for key, record in data["weights"].items():
        parts.append(
            f"<tr><td class='l'>{html.escape(key)}</td><td class='l'>{html.escape(record['file'])} "
            f"(sha1 {record['sha1'][:12]})</td></tr>"
        )
    for key, version in data["versions"].items():
        parts.append(f"<tr><td class='l'>{html.escape(key)}</td><td class='l'>{_format(version)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(result: EvaluationResult, out_dir: str | Path, *, worst: int = 3) -> dict[str, Path]:
    """Write `metrics.json`, `report.html` and `figures/`; returns the paths written.

    The folder is checked first (`check_report_dir`), so nothing is half-written into a place that cannot hold it.
    """
    out = Path(out_dir)
    data = result.data
    check_report_dir(out, {"--generated": Path(data["generated_dir"]), "--ground-truth": Path(data["reference_dir"])})
    written: dict[str, Path] = {}
    written["metrics"] = write_json_atomic(out / "metrics.json", result.data)
    figures: dict[str, str] = {}
    chart = bar_chart(result.data["videos"])
    if chart is not None:
        write_bytes_atomic(out / "figures" / "per_video.png", chart)
        figures["bars"] = "figures/per_video.png"
    for rank, thumb in enumerate(sorted(result.thumbnails, key=lambda t: t.ssim)[:worst]):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in thumb.video)
        relative = f"figures/worst_{rank}_{safe}.png"
        write_bytes_atomic(out / relative, worst_case_figure(thumb))
        figures[f"worst_{rank}"] = relative
    written["report"] = write_text_atomic(out / "report.html", render_html(result.data, figures))
    return written


def check_report_dir(out_dir: str | os.PathLike, inputs: dict[str, Path], flag: str = "--out") -> None:
    """`InputError` unless `out_dir` can become the report folder: not an existing file, neither one of the `inputs`
    folders (flag -> folder) nor inside one, and `metrics.json` in it writable (`dynamictrl.io.outputs.check_outputs`:
    no file where a parent folder should be, and the nearest existing folder writable, which is tried by creating and
    removing a hidden file there: root ignores permission bits but not a read-only mount). Nothing else is created.
    """
    out = Path(out_dir)
    if out.is_file():
        raise InputError(f"{flag} {out_dir} is a file; give a folder for metrics.json and report.html")
    resolved = out.resolve()
    for input_flag, folder in inputs.items():
        source = Path(folder).resolve()
        if resolved == source:
            raise InputError(f"{flag} {out_dir} is the {input_flag} folder; write the report to another folder")
        if source in resolved.parents:
            raise InputError(
                f"{flag} {out_dir} is inside the {input_flag} folder {folder}; write the report elsewhere"
            )
    check_outputs({flag: out / "metrics.json"})
