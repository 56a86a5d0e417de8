"""Browser check of the explorers (``make browser-check``): JupyterLab on the project's kernel, each of notebooks
04–08 opened in headless Chromium, its explorer run, one control changed, and the redrawn image compared with the
first.

Not a pytest module (it needs Debian's ``chromium`` and ``chromedriver``, which the make target installs): it prints
one line per step and exits non-zero on the first failure. Copies of the notebooks are opened from a temporary folder,
so JupyterLab's autosave never touches the committed notebooks. ``--screenshots DIR`` keeps a picture of each
explorer as ``DIR/explorer_NN.png``; ``--only 05`` checks one notebook.
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

TOKEN = "moe-browser-check"
IMPORTS, EXPLORE = "%load_ext autoreload", "## Explore"
SETTINGS = (IMPORTS, "SEED = ", "settings = ", EXPLORE)  # imports, parameters, settings, explorer
EXPLORERS = {  # notebook -> (the cells its explorer needs, the control changed)
    "04_routing_stability.ipynb": ((IMPORTS, EXPLORE), "layer"),
    "05_expert_load.ipynb": (SETTINGS, "layer"),
    "06_head_importance.ipynb": ((IMPORTS, EXPLORE), "task"),
    "07_layer_activation.ipynb": ((IMPORTS, EXPLORE), "layer"),
    "08_real_models.ipynb": (SETTINGS, "family"),
}


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


def check_explorer(driver, url: str, notebook: str, started: float, screenshot: Path | None) -> None:
    """Open ``notebook``, run its explorer's cells, change one control and see the image redrawn."""
    from selenium.webdriver.support.ui import Select

    cells, control = EXPLORERS[notebook]
    driver.get(f"{url}/lab/workspaces/check-{notebook[:2]}/tree/{notebook}?reset&token={TOKEN}")  # only this one open
    wait_for(lambda: driver.execute_script(KERNEL_READY_JS), f"{notebook}'s kernel idle", 120)
    print(f"opened {notebook} on its kernel ({time.monotonic() - started:.0f} s)")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    for prefix in cells:
        index = driver.execute_async_script(RUN_CELL_JS, prefix)
        if not isinstance(index, int) or index < 0:
            raise SystemExit(f"browser check failed: {notebook}: running the cell starting {prefix!r} gave {index!r}")
    cell = driver.execute_script(
        "return window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]].node", index
    )
    first = wait_for(lambda: explorer_image(cell), f"{notebook}: the explorer's first image", 120)
    boxes = wait_for(lambda: cell.find_elements("css selector", ".widget-dropdown select"), "the controls", 30)
    labels = [b.find_element("xpath", "..").text.split("\n")[0] for b in boxes]
    texts = [
        t.find_element("css selector", ".widget-label").text for t in cell.find_elements("css selector", ".widget-text")
    ]
    print(f"  explorer drawn with controls {labels + texts} ({time.monotonic() - started:.0f} s)")
    choice = Select(boxes[labels.index(control)])
    choice.select_by_index(len(choice.options) - 1)
    changed = time.monotonic()
    second = wait_for(lambda: (src := explorer_image(cell)) != first and src, "a redrawn image after the change", 60)
    print(f"  {control} -> {choice.first_selected_option.text}: redrawn in {time.monotonic() - changed:.1f} s")
    if second == first:
        raise SystemExit(f"browser check failed: {notebook}: the redrawn image equals the first")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.execute_script("arguments[0].scrollIntoView()", cell)
        cell.screenshot(str(screenshot))
        print(f"  screenshot: {screenshot}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", type=Path, default=None, help="keep DIR/explorer_NN.png of each explorer")
    parser.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 05")
    args = parser.parse_args(argv)
    wanted = [n for n in EXPLORERS if args.only is None or n[:2] in args.only.split(",")]
    if not wanted:
        raise SystemExit(f"--only={args.only!r} is not allowed; choose from {', '.join(n[:2] for n in EXPLORERS)}")
    root = Path(tempfile.mkdtemp(prefix="moe-browser-check-"))
    for notebook in wanted:
        shutil.copy(paths.NOTEBOOKS_DIR / notebook, root / notebook)
    port, log = free_port(), root / "jupyterlab.log"
    lab = start_lab(root, port, log)
    driver = None
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: urllib.request.urlopen(f"{url}/api/status?token={TOKEN}").status == 200, "JupyterLab up", 90)
        print(f"JupyterLab is up on 127.0.0.1:{port} ({time.monotonic() - started:.0f} s)")
        driver = browser()
        driver.set_script_timeout(300)
        for notebook in wanted:
            shot = args.screenshots / f"explorer_{notebook[:2]}.png" if args.screenshots else None
            check_explorer(driver, url, notebook, started, shot)
        print(f"browser check passed for {', '.join(n[:2] for n in wanted)} in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(lab.pid, 15)
        lab.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
