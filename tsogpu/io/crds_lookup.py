"""Reference files chosen by CRDS: the crds client asked as jwst's steps ask it.

Used by :mod:`tsogpu.io.reffiles` for the reference types not given with ``--ref``; the crds
package and stdatamodels' schemas are imported only when a look-up is made.
"""

import functools
import os

from ..errors import ReferenceFileError


def configured():
    """True when CRDS_PATH or CRDS_SERVER_URL is set (the crds client then knows where to look)."""
    return bool(os.environ.get("CRDS_PATH") or os.environ.get("CRDS_SERVER_URL"))


def lookup(exposure, reftypes, header):
    """Ask the crds client for ``reftypes``; returns ({reftype: path}, context)."""
    how = "give them with --ref TYPE=PATH"
    try:
        import crds
        from crds.core import heavy_client
    except ImportError as exc:
        raise ReferenceFileError(
            f"no reference file for {', '.join(reftypes)} and the crds package cannot be "
            f"imported ({exc}); install crds or {how}"
        ) from None
    context = None
    try:
        parameters = crds_parameters(exposure, header)
        _connected, context = heavy_client.get_processing_mode("jwst")
        # No crds_cache_locking.get_cache_lock() as stpipe has: a no-op in crds 14, which
        # locks its cache itself.
        found = crds.getreferences(
            parameters, reftypes=list(reftypes), context=context, observatory="jwst"
        )
    except ReferenceFileError:
        raise
    except Exception as exc:  # the crds client raises many kinds (network, cache, lookup)
        raise ReferenceFileError(
            f"CRDS lookup of {', '.join(reftypes)} failed (context {context}): "
            f"{type(exc).__name__}: {exc}; {how}"
        ) from exc
    return dict(found), context


def crds_parameters(exposure, header=None):
    """CRDS parameters as jwst builds them: ``{"meta.instrument.name": "NIRCAM", ...}``.

    jwst passes ``RampModel.get_crds_parameters()``: the model's metadata flattened to dotted
    schema paths, scalar values only. Here the same paths are found by mapping each primary-
    header keyword through the RampModel schema; ``exposure`` supplies the keywords when
    ``header`` is None (a header, when given, wins).
    """
    keyword_paths = _fits_keyword_paths()
    values = {
        "INSTRUME": exposure.instrument,
        "DETECTOR": exposure.detector,
        "EXP_TYPE": exposure.exp_type,
        "READPATT": exposure.readpatt,
        "NINTS": exposure.nints,
        "NGROUPS": exposure.ngroups,
        "NFRAMES": exposure.nframes,
        "GROUPGAP": exposure.groupgap,
        "TFRAME": exposure.tframe,
        "TGROUP": exposure.tgroup,
        "SUBARRAY": exposure.subarray,
        "SUBSTRT1": exposure.substrt1,
        "SUBSTRT2": exposure.substrt2,
        "SUBSIZE1": exposure.subsize1,
        "SUBSIZE2": exposure.subsize2,
        "FASTAXIS": exposure.fastaxis,
        "SLOWAXIS": exposure.slowaxis,
        "NOUTPUTS": exposure.noutputs,
    }
    values.update(header or {})
    return {
        keyword_paths[k]: v
        for k, v in values.items()
        if k in keyword_paths and isinstance(v, (str, int, float, bool))
    }


@functools.cache
def _fits_keyword_paths():
    """Primary-header FITS keyword -> dotted RampModel schema path (e.g. meta.instrument.name)."""
    try:
        from stdatamodels.jwst.datamodels import RampModel
        from stdatamodels.schema import walk_schema
    except ImportError as exc:
        raise ReferenceFileError(
            f"CRDS look-ups need stdatamodels to name the CRDS parameters ({exc}); "
            "give the reference files with --ref TYPE=PATH"
        ) from None
    paths = {}

    def visit(subschema, path, combiner, ctx, recurse):
        if path and path[0] == "extra_fits":
            return True
        keyword = subschema.get("fits_keyword")
        if keyword and subschema.get("fits_hdu", "PRIMARY") == "PRIMARY":
            paths.setdefault(keyword, ".".join(path))
        return None

    with RampModel() as model:
        walk_schema(model._schema, visit)
    return paths
