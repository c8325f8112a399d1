"""The raw ramps: shot noise, cosmic rays, non-linearity, bias drift, 1/f and read noise,
read frame by frame and averaged into groups as the instrument does onboard."""

import numpy as np

from .linearity import inverse_linearity, series_inverse


def one_over_f_series(rng, nseries, nlines_total, rms):
    """``nseries`` independent 1/f (pink) series of ``nlines_total`` samples, float64."""
    n = 1 << max(1, int(nlines_total - 1).bit_length())  # a fast FFT length
    freq = np.fft.rfftfreq(n)
    scale = np.zeros_like(freq)
    scale[1:] = freq[1:] ** -0.5
    spec = (
        rng.standard_normal((nseries, freq.size)) + 1j * rng.standard_normal((nseries, freq.size))
    ) * scale
    series = np.fft.irfft(spec, n=n, axis=1)[:, :nlines_total]
    series -= series.mean(axis=1, keepdims=True)
    return series * (rms / series.std(axis=1, keepdims=True))


def integer_ramps(
    geo, det, scene, lc, crs, rng, read_frames, nf, divisor, ngroups, rms_1f, nframes_int
):
    """Integer ramps (uint16), zero frames (uint16) and the injected 1/f per group (float32).

    Works one integration at a time in float32 (the noise is far above float32 rounding).
    """
    f32 = np.float32
    ys, xs = geo.ys, geo.xs
    ny, nx = geo.ny, geo.nx
    npix = ny * nx
    nints = lc.size
    nread = read_frames.size
    bias = det["bias"][ys, xs].astype(f32).ravel()
    gain = det["gain"][ys, xs].astype(f32).ravel()
    coeffs = det["coeffs"][:, ys, xs].astype(f32).reshape(5, 1, npix)
    m_cap = (det["hard_sat"][ys, xs] - det["bias"][ys, xs]).astype(f32).ravel()
    sigma_read = (det["readnoise"][ys, xs] / np.sqrt(2.0)).astype(f32).ravel()
    dframes = np.diff(np.concatenate([[-1], read_frames])).astype(f32)[:, None]
    flux = (scene["flux"].ravel() * gain * geo.tframe).astype(f32)
    dark = (scene["dark"].ravel() * gain * geo.tframe).astype(f32)
    # Shot noise, split by brightness for speed: pixels that collect few electrons in a whole
    # integration get one Poisson draw for the total and a multinomial split over the read
    # intervals (an exact Poisson process); bright pixels get the normal approximation, whose
    # error is far below the read noise; the rest get one Poisson draw per read interval.
    per_frame = (flux * f32(lc.max()) + dark) * dframes.max()
    total = (flux * f32(lc.max()) + dark) * dframes.sum()
    sensitive = ~geo.refpix.ravel()
    sparse = np.flatnonzero(sensitive & (total < 5.0))
    bright = np.flatnonzero(sensitive & (per_frame >= 30.0))
    faint = np.flatnonzero(sensitive & (total >= 5.0) & (per_frame < 30.0))
    frame_p = dframes[:, 0].astype(np.float64)
    frame_p /= frame_p.sum()

    namps = 4 if geo.noutputs == 4 else 1
    frames_per_int = nframes_int + 1  # + one reset frame
    if rms_1f > 0:
        # one series per amplifier plus a common one (the amplifiers are read together); one
        # sample per fast-read line, plus one line of overhead per frame
        lines_per_frame = geo.nlines + 1
        series = one_over_f_series(rng, namps + 1, nints * frames_per_int * lines_per_frame, rms_1f)
        series = (
            (np.sqrt(0.5) * series[:namps] + np.sqrt(0.5) * series[namps:])
            .reshape(namps, nints, frames_per_int, lines_per_frame)[..., : geo.nlines]
            .astype(f32)
        )
    pix_series = (geo.amp * geo.nlines + geo.line).ravel()  # index into (amp, line)
    pix_drift = (geo.amp * 2 + geo.parity).ravel()  # index into (amp, parity)

    # per (int, read frame, amp, parity) bias drift that the reference pixels track
    drift = rng.normal(0.0, 8.0, (nints, 1, namps * 2)) + rng.normal(
        0.0, 2.0, (nints, nread, namps * 2)
    )
    drift = drift.astype(f32)
    data = np.empty((nints, ngroups, ny, nx), np.uint16)
    zframe = np.empty((nints, ny, nx), np.uint16)
    # without 1/f the truth holds a broadcastable zero array instead of a full-size one
    onef_out = np.zeros((nints, ngroups, ny, nx) if rms_1f > 0 else (nints, ngroups, 1, 1), f32)
    for i in range(nints):
        lam = (flux * f32(lc[i]) + dark)[None] * dframes  # electrons per read interval
        inc = np.zeros((nread, npix), f32)
        lb = lam[:, bright]
        inc[:, bright] = lb + np.sqrt(lb) * rng.standard_normal(lb.shape, dtype=f32)
        inc[:, faint] = rng.poisson(lam[:, faint])
        counts = rng.poisson((flux[sparse] * f32(lc[i]) + dark[sparse]) * dframes.sum())
        hit = np.repeat(sparse, counts)
        np.add.at(inc, (rng.choice(nread, size=hit.size, p=frame_p), hit), f32(1.0))
        for k in range(1, nread):  # cumulative charge; faster than cumsum along axis 0
            inc[k] += inc[k - 1]
        charge = inc
        charge /= gain
        for c in crs[crs["int"] == i]:
            charge[int(c["group"]) * nf :, c["y"] * nx + c["x"]] += c["amplitude"]
        # Non-linearity: the series start is exact to < 1e-3 DN below 1000 DN; solve the rest.
        meas = series_inverse(coeffs[:, 0], charge)
        strong = np.flatnonzero(sensitive & (charge[-1] > 1000.0))
        meas[:, strong] = inverse_linearity(coeffs[:, :, strong], charge[:, strong], m_cap[strong])
        meas[:, ~sensitive] = 0.0
        raw = meas
        raw += bias
        raw += drift[i][:, pix_drift]
        if rms_1f > 0:
            frame_1f = series[:, i, read_frames, :].transpose(1, 0, 2).reshape(nread, -1)
            frame_1f = frame_1f[:, pix_series]
            raw += frame_1f
            if nf == 1:
                onef_out[i] = frame_1f.reshape(ngroups, ny, nx)
            else:
                onef_out[i] = frame_1f.reshape(ngroups, nf, ny, nx).mean(axis=1)
        raw += sigma_read * rng.standard_normal(raw.shape, dtype=f32)
        raw = np.clip(np.rint(raw, out=raw), 0.0, 65535.0, out=raw)  # A/D of every frame
        raw = raw.reshape(nread, ny, nx)
        zframe[i] = raw[0]
        if nf == 1 and divisor == 1:
            data[i] = raw
        else:
            # onboard frame averaging: integer sum divided by FRMDIVSR, truncated
            sums = raw.reshape(ngroups, nf, ny, nx).astype(np.float64).sum(axis=1)
            data[i] = np.clip(np.floor(sums / divisor), 0.0, 65535.0)
    return data, zframe, onef_out


def saturated_pixels(sat_group):
    """The truth's table of saturated ramps: (int, group, y, x) of each pixel and integration
    whose ramp saturates, ``group`` its first saturated group (``sat_group`` >= 0 there)."""
    where = np.argwhere(sat_group >= 0)
    table = np.zeros(len(where), dtype=[("int", "i4"), ("group", "i4"), ("y", "i4"), ("x", "i4")])
    if len(where):
        table["int"], table["y"], table["x"] = where.T
        table["group"] = sat_group[tuple(where.T)]
    return table


def write_truth(path, mode, seed, scene, lc, times, crs, sat_group, det, geo, **more):
    """The ``*_truth.npz`` of a simulated segment: what every mode has (rates, light curve,
    cosmic rays, saturation, bias, gain, reference pixels), then the mode's own ``more``."""
    ys, xs = geo.ys, geo.xs
    np.savez(
        path,
        mode=np.array(mode),
        seed=np.array(seed),
        rate=(scene["flux"][None] * lc[:, None, None]).astype(np.float32),
        flux=scene["flux"].astype(np.float32),
        dark_rate=scene["dark"].astype(np.float32),
        light_curve=lc,
        int_mid_bjd=times["int_mid_BJD_TDB"],
        cr=crs,
        sat_group=sat_group,
        sat_pixels=saturated_pixels(sat_group),
        bias=det["bias"][ys, xs].astype(np.float32),
        gain=det["gain"][ys, xs].astype(np.float32),
        refpix=geo.refpix,
        **more,
    )
    return path
