"""What new memory costs on this machine: 1 GiB touched for the first time against the same
amount touched again, in anonymous memory and in the page cache.

    python bench/fresh_memory.py [--repeats 3]

On a VM that hands freed guest pages back to its host (virtio-balloon free page reporting),
a page the guest has not used lately costs a host fault on first touch; one freed a moment ago
does not. Every run of tsogpu (its scratch ramp, products and temporaries) and of jwst pays
this per GiB it touches anew, so it bounds what a run of either can save here.
"""

import argparse
import os
import tempfile
import time

import numpy as np

GIB = 2**30


def anonymous():
    """Seconds to fill 1 GiB of new anonymous memory, then to fill it again."""
    t0 = time.perf_counter()
    a = np.empty(GIB // 4, np.float32)
    a.fill(1.0)
    t1 = time.perf_counter()
    a.fill(2.0)
    return t1 - t0, time.perf_counter() - t1


def page_cache(folder):
    """Seconds to write 1 GiB into a new file (new page-cache pages), then over it again."""
    buf = np.ones(GIB, np.uint8)
    with tempfile.TemporaryFile(dir=folder) as fh:
        t0 = time.perf_counter()
        os.pwrite(fh.fileno(), buf, 0)
        t1 = time.perf_counter()
        os.pwrite(fh.fileno(), buf, 0)
        return t1 - t0, time.perf_counter() - t1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folder", default=tempfile.gettempdir())
    args = ap.parse_args()
    for _ in range(args.repeats):
        first, again = anonymous()
        print(f"anonymous 1 GiB: first touch {first:.2f} s, again {again:.2f} s")
        first, again = page_cache(args.folder)
        print(f"page cache 1 GiB: new file {first:.2f} s, over it {again:.2f} s")
        time.sleep(5)  # long enough for freed pages to go back to a host that takes them


if __name__ == "__main__":
    main()
