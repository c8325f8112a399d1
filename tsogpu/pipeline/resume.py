"""Resumable products: what a segment's products depend on, and whether they are done.

Every product records ``TSOIHASH`` (:func:`input_hash`), a hash of its inputs' identities,
its parameters and the tsogpu version. :func:`complete_products` says whether a segment's
products are all there with the hash a run would record (``tsogpu batch`` then skips it);
:func:`remove_leftovers` removes what a killed run left (hidden temporary files, scratch).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from .. import __version__
from ..config import required_reftypes
from .segment_wide import bias_scale_mode

log = logging.getLogger(__name__)

# Parameters that change no bit of a product: how the work is cut and run. The backends give
# the same products too (the conformance tests), and save_ramp only adds a product. The
# reference files enter the input hash by their identity, not by the paths in "ref".
RESULT_NEUTRAL = ("threads", "max_memory", "backend", "save_ramp", "ref")


def file_identity(path):
    """``[name, size, mtime_ns]`` of a file: what the input hash knows of it.

    Not a content hash: hashing a segment reads gigabytes, and a rerun over an archive would
    read every input again just to decide what to skip. ``stat`` costs microseconds; any
    rewrite, ``touch`` or copy without preserved times changes the identity (the product is
    redone), and the name without its folder lets an archive be moved with ``mv`` or
    ``rsync -a`` and still be found complete.
    """
    st = os.stat(path)
    return [os.path.basename(os.fspath(path)), st.st_size, st.st_mtime_ns]


def input_hash(uncal_path, config, ref_paths, shared=None):
    """SHA-256 (hex) of what a segment's products depend on: ``TSOIHASH`` in each product.

    Covers the uncal file's :func:`file_identity`, each reference file's identity (a file
    given with ``--ref``: its :func:`file_identity`; a CRDS file: its name, which CRDS never
    reuses for other contents; ``N/A``), the parameters (``config.as_dict()`` without
    :data:`RESULT_NEUTRAL`), the tsogpu version and, with ``dq_init.user_mask``, that file's
    identity. A rerun that finds every product with the hash it would record skips the
    segment.

    Parameters
    ----------
    ref_paths : dict
        reftype -> local path or ``"N/A"``, as resolved for this segment (the types the
        steps that run need).
    shared : tsogpu.exposure.Shared, optional
        The exposure's first pass (``exposure_wide``): its content hash is covered too, so
        products made with other segments' statistics are redone.
    """
    refs = {}
    for reftype, path in sorted(ref_paths.items()):
        if str(path).upper() == "N/A":
            refs[reftype] = "N/A"
        elif reftype in config.refs:
            refs[reftype] = file_identity(path)
        else:
            refs[reftype] = "crds:" + os.path.basename(os.fspath(path))
    params = {k: v for k, v in config.as_dict().items() if k not in RESULT_NEUTRAL}
    doc = {
        "tsogpu": __version__,
        "uncal": file_identity(uncal_path),
        "refs": refs,
        "params": params,
    }
    if shared is not None:
        doc["shared"] = shared.hash
    user_mask = config.params("dq_init").user_mask
    if user_mask and os.path.isfile(user_mask):  # dq_init.user_mask: an edited mask redoes
        doc["user_mask"] = file_identity(user_mask)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def scratch_prefix(uncal_path):
    """Name prefix of the hidden scratch folder ``process_file`` makes beside the products."""
    return f".tsogpu-scratch-{Path(uncal_path).name}."


def expected_products(uncal_path, out_dir, config, refs=None, instrument=None):
    """The products ``process_file`` writes for ``uncal_path`` with ``config``, the options'
    side products included. ``refs`` (reftype -> path or ``"N/A"``; default the ones
    ``config`` gives) say whether ``superbias.scale`` has a superbias to scale; ``instrument``
    (INSTRUME; None: not known, not counted) whether the MIRI steps' ``_removed`` is one."""
    from ..io.products import product_name

    if "ramp_fit" in config.skip:
        suffixes = ["ramp"]
    else:
        suffixes = (["ramp"] if config.save_ramp else []) + ["rateints", "rate"]
    if config.params("refpix").sky_method != "off" and "refpix" not in config.skip:
        suffixes.append("oneoverf")
    refs = config.refs if refs is None else refs
    if bias_scale_mode(config) is not None and refs.get("superbias") != "N/A":
        suffixes.append("biasscale")
    if str(instrument).upper() == "MIRI":
        suffixes.append("removed")
    return [Path(out_dir, product_name(uncal_path, s)) for s in suffixes]


def say_if_overwritten(uncal_path, out_dir, config):
    """Log one line where ``tsogpu run`` is about to replace products already in ``out_dir``
    (``run`` always redoes a segment; ``batch`` skips one whose products are complete)."""
    there = [p.name for p in expected_products(uncal_path, out_dir, config) if p.is_file()]
    if there:
        log.info("%s: replacing %s in %s", uncal_path, ", ".join(there), out_dir)


def complete_products(uncal_path, out_dir, config, shared=None):
    """The products of ``uncal_path`` in ``out_dir`` when each is there with the input hash
    this run would record (``TSOIHASH``, with the exposure's ``shared`` pass 1 where given);
    None when any is missing, older or unreadable.

    A fully saturated exposure has only a ``_ramp`` (ramp fitting skipped, as jwst): that
    counts as complete too.
    """
    from astropy.io import fits

    from ..io import products, reffiles, uncal

    paths = expected_products(uncal_path, out_dir, config)
    ramp = Path(out_dir, products.product_name(uncal_path, "ramp"))
    if not all(p.is_file() for p in paths) and not ramp.is_file():
        return None  # nothing to compare: no header or CRDS look-up needed
    try:
        header = uncal.read_primary_header(uncal_path)
        exposure = uncal.read_exposure(header, uncal_path)
        refs = reffiles.resolve_references(
            exposure, required_reftypes(config, exposure.instrument), config.refs, header=header
        )
        expected = input_hash(uncal_path, config, refs, shared)
        paths = expected_products(uncal_path, out_dir, config, refs, exposure.instrument)

        def has_hash(path):
            got = fits.getheader(path).get(products.INPUT_HASH_KEYWORD)
            return got == expected

        if all(p.is_file() for p in paths) and all(has_hash(p) for p in paths):
            return paths
        # fully saturated: ramp fitting skipped, only the ramp written
        if ramp.is_file() and has_hash(ramp) and fits.getheader(ramp).get("S_RAMP") == "SKIPPED":
            return [ramp]
    except Exception as exc:  # anything wrong: redo, and let process_file say what
        log.debug("%s: products not taken as complete (%s)", uncal_path, exc)
    return None


def remove_leftovers(uncal_path, out_dir):
    """Remove what a killed run on ``uncal_path`` left in ``out_dir``: its products' hidden
    temporary files and its scratch folder. Returns the names removed."""
    from ..io.atomic import temporary_prefix
    from ..io.products import PRODUCT_KINDS, product_name

    scratch = scratch_prefix(uncal_path)
    temps = tuple(temporary_prefix(product_name(uncal_path, s)) for s in PRODUCT_KINDS)
    removed = []
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(scratch) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        elif entry.name.startswith(temps) and entry.name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
        else:
            continue
        removed.append(entry.name)
    return removed
