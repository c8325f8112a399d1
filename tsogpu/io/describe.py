"""A file described in a few lines: what ``tsogpu info`` and the demo print."""

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
