"""A file described in a few lines: what ``tsogpu info`` and the demo print."""

import os
import shlex
from pathlib import Path

from .uncal import image_dtype, open_fits


def describe(path):
    """A short human-readable summary of an uncal file or a product."""
    lines = [str(path)]
    with open_fits(path) as hdul:
        h = hdul[0].header
        kind = h.get("DATAMODL", "FITS")
        lines.append(
            f"  {kind}: {h.get('INSTRUME', '?')} {h.get('DETECTOR', '?')} "
            f"{h.get('EXP_TYPE', '?')} {h.get('SUBARRAY', '?')} {h.get('READPATT', '?')}"
        )
        lines.append(
            f"  NINTS={h.get('NINTS')} NGROUPS={h.get('NGROUPS')} NFRAMES={h.get('NFRAMES')} "
            f"GROUPGAP={h.get('GROUPGAP')} TGROUP={h.get('TGROUP')} NOUTPUTS={h.get('NOUTPUTS')}"
        )
        if h.get("EXSEGNUM") is not None:
            lines.append(
                f"  segment {h.get('EXSEGNUM')} of {h.get('EXSEGTOT')}: "
                f"integrations {h.get('INTSTART')}-{h.get('INTEND')}"
            )
        short = _truncated(hdul, path)
        if short:
            lines.append(f"  TRUNCATED: {short}")
        for hdu in hdul[1:]:
            name = hdu.name
            if hdu.is_image and hdu.shape:
                lines.append(f"  {name:<12} {str(hdu.shape):<26} {image_dtype(hdu)}")
            elif not hdu.is_image:
                lines.append(f"  {name:<12} table, {hdu.header.get('NAXIS2', 0)} rows")
        steps = [f"{k[2:]}={h[k]}" for k in h if k.startswith("S_")]
        if steps:
            lines.append("  steps: " + " ".join(steps))
        refs = [f"{k}={h[k]}" for k in h if k.startswith("R_")]
        if refs:
            lines.append("  references: " + " ".join(refs))
        if "TSOVER" in h:
            lines.append(f"  made by tsogpu {h['TSOVER']} on backend {h.get('TSOBACK')}")
    return "\n".join(lines)


def _truncated(hdul, path):
    """Why the file is shorter than its headers say, or None where it is whole."""
    size = os.path.getsize(path)
    needed = max(
        (info["datLoc"] + info["datSpan"] for info in map(hdul.fileinfo, range(len(hdul)))),
        default=0,
    )
    if size >= needed:
        return None
    return f"the file has {size} bytes but its headers describe {needed}; data are missing"


def demo_summary(folder, before, since):
    """Where the demo's files are, how big they are and how to remove them; ``before``: the
    folder's entries before the demo (empty or None where it was new), ``since``: its start
    (a time.time(); files rewritten since then are the demo's too)."""
    folder = Path(folder)

    def files(p):
        return [f for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]

    new = sorted(
        p
        for p in folder.iterdir()
        if not before or p not in before or any(f.stat().st_mtime >= since for f in files(p))
    )
    written = [f for p in new for f in files(p) if not before or f.stat().st_mtime >= since]
    size = sum(f.stat().st_size for f in written)
    others = set(folder.iterdir()) - set(new)  # not the demo's: kept
    targets = new if others else [folder]
    return (
        f"the demo wrote {len(written)} files, {size / 2**20:.1f} MiB, in {folder}; remove "
        f"them with: rm -r {' '.join(shlex.quote(str(p)) for p in targets)}"
    )
