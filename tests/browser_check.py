"""Browser check of the explorers (``make browser-check``): JupyterLab on the project's kernel, notebook 05 opened in
headless Chromium, its explorer run, one control changed, and the redrawn image compared with the first.

Not a pytest module (it needs Debian's ``chromium`` and ``chromedriver``, which the make target installs): it prints
one line per step and exits non-zero on the first failure. A copy of notebook 05 is opened from a temporary folder,
so JupyterLab's autosave never touches the committed notebook. ``--screenshot PATH`` keeps a picture of the explorer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from moe_utils.io import paths

NOTEBOOK = "05_expert_load.ipynb"
TOKEN = "moe-browser-check"
RUN_CELLS = ("%load_ext autoreload", "SEED = ", "settings = ", "## Explore")  # imports, parameters, settings, explorer


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, port: int, log: Path) -> subprocess.Popen:
    """JupyterLab serving ``root`` on 127.0.0.1:port, the app exposed to the page's scripts."""
    jupyter = Path(sys.executable).with_name("jupyter")
    command = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}",
               f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True", "--allow-root"]  # fmt: skip
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(check, what: str, seconds: float, step: float = 0.5):
    """``check()``'s first truthy value within ``seconds``; else a one-line failure naming ``what``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # not ready yet (connection refused, element missing, script error)
            value = None
        if value:
            return value
        time.sleep(step)
    raise SystemExit(f"browser check failed: {what} within {seconds:.0f} s")


def browser():
    """Headless Chromium driven by Debian's chromedriver (no browser or driver download of its own)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


RUN_CELL_JS = """
const [prefix, done] = [arguments[0], arguments[arguments.length - 1]];
const panel = window.jupyterapp.shell.currentWidget;
const cells = panel.content.widgets;
let index = cells.findIndex(c => c.model.sharedModel.getSource().startsWith(prefix));
if (prefix.startsWith('## ')) index += 1;  // the code cell under the heading
panel.content.activeCellIndex = index;
window.jupyterapp.commands.execute('notebook:run-cell').then(() => done(index), e => done('error: ' + e));
"""

KERNEL_READY_JS = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
return !!(panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel
          && panel.sessionContext.session.kernel.status === 'idle');
"""


def explorer_image(cell) -> str:
    """The ``src`` of the image in the explorer cell's output."""
    images = cell.find_elements("css selector", ".jp-OutputArea-output img")
    return images[-1].get_attribute("src") if images else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, default=None, help="keep a PNG of the explorer here")
    args = parser.parse_args(argv)
    from selenium.webdriver.support.ui import Select

    root = Path(tempfile.mkdtemp(prefix="moe-browser-check-"))
    shutil.copy(paths.NOTEBOOKS_DIR / NOTEBOOK, root / NOTEBOOK)
    port, log = free_port(), root / "jupyterlab.log"
    lab = start_lab(root, port, log)
    driver = None
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: urllib.request.urlopen(f"{url}/api/status?token={TOKEN}").status == 200, "JupyterLab up", 90)
        print(f"JupyterLab is up on 127.0.0.1:{port} ({time.monotonic() - started:.0f} s)")
        driver = browser()
        driver.set_script_timeout(180)
        driver.get(f"{url}/lab/tree/{NOTEBOOK}?token={TOKEN}")
        wait_for(lambda: driver.execute_script(KERNEL_READY_JS), "the notebook's kernel idle", 120)
        print(f"opened {NOTEBOOK} on its kernel ({time.monotonic() - started:.0f} s)")
        driver.execute_script("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
        for prefix in RUN_CELLS:
            index = driver.execute_async_script(RUN_CELL_JS, prefix)
            if not isinstance(index, int) or index < 0:
                raise SystemExit(f"browser check failed: running the cell starting {prefix!r} gave {index!r}")
        cell = driver.execute_script(
            "return window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]].node", index
        )
        first = wait_for(lambda: explorer_image(cell), "the explorer's first image", 60)
        boxes = wait_for(lambda: cell.find_elements("css selector", ".widget-dropdown select"), "the controls", 30)
        labels = [b.find_element("xpath", "..").text.split("\n")[0] for b in boxes]
        texts = [
            t.find_element("css selector", ".widget-label").text
            for t in cell.find_elements("css selector", ".widget-text")
        ]  # the text box (05: routed by the kept models)
        print(f"explorer drawn with controls {labels + texts} ({time.monotonic() - started:.0f} s)")
        layer = Select(boxes[labels.index("layer")])
        layer.select_by_index(len(layer.options) - 1)
        changed = time.monotonic()
        second = wait_for(
            lambda: (src := explorer_image(cell)) != first and src, "a redrawn image after the change", 30
        )
        print(
            f"layer -> {layer.first_selected_option.text}: the image was redrawn in {time.monotonic() - changed:.1f} s"
        )
        if second == first:
            raise SystemExit("browser check failed: the redrawn image equals the first")
        if args.screenshot:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.execute_script("arguments[0].scrollIntoView()", cell)
            cell.screenshot(str(args.screenshot))
            print(f"screenshot: {args.screenshot}")
        print(f"browser check passed in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(lab.pid, 15)
        lab.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
