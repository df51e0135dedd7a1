"""The page in a real browser: Debian's Chromium driven by Playwright against the real server process.

Real mouse and touch strokes on the canvas, an upload, the model panel, a real training job, a phone-sized
screen and the keyboard; no request may leave the page for another origin. Screenshots go to
artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import base64
import itertools
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT
from tests.e2e.conftest import Server, start_server, stop_server

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the Python package playwright is not installed (pip install playwright)"
)
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

expect = sync_api.expect
expect.set_options(timeout=15_000)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-admin-token"
DIGIT_PNG = REPO_ROOT / "examples" / "digit.png"  # an MNIST 7
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 667}

# Strokes as fractions of the pad, each a list of points the pointer passes through.
ONE = [[(0.5, 0.18), (0.5, 0.82)]]
SEVEN = [[(0.28, 0.22), (0.72, 0.22)], [(0.72, 0.22), (0.6, 0.5), (0.45, 0.82)]]
ZERO = [
    [
        (0.5 + 0.2 * x, 0.5 + 0.3 * y)
        for x, y in [(0, -1), (0.7, -0.7), (1, 0), (0.7, 0.7), (0, 1), (-0.7, 0.7), (-1, 0), (-0.7, -0.7), (0, -1)]
    ]
]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e-browser")
    for name in ("lenet5", "lenet5-plus"):
        shutil.copytree(BUNDLED_MODELS / name / "1", root / "models" / name / "1")
    server = start_server(
        root / "models", root / "server.log", LENET_ADMIN_TOKEN=TOKEN, LENET_MNIST_PATH=str(FIXTURE_MNIST)
    )
    yield server
    stop_server(server)
    assert TOKEN not in server.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    page: object
    requests: list[object] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def predict_requests(self) -> list[object]:
        return [r for r in self.requests if "/predict" in r.url]


@pytest.fixture
def visit(browser, ui_server) -> Iterator[Callable[..., Visit]]:
    """Opens the page (or another of the server's pages, `path`) in a fresh context; afterwards, checks no
    request left the server's origin and no script error happened."""
    contexts, visits = [], []

    def open_page(viewport: dict[str, int] = DESKTOP, path: str = "/", **options: object) -> Visit:
        context = browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        seen = Visit(page)
        context.on("request", lambda request: seen.requests.append(request))
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        visits.append(seen)
        page.goto(ui_server.url + path)
        if path == "/":
            expect(page.locator("#model-select")).to_be_enabled()  # /models answered: the page is set up
        return seen

    yield open_page
    for context in contexts:
        context.close()
    for seen in visits:
        foreign = [r.url for r in seen.requests if not r.url.startswith((ui_server.url + "/", "data:", "blob:"))]
        assert not foreign, f"requests left the page's origin {ui_server.url}: {foreign}"
        assert not seen.errors, f"script errors: {seen.errors}"


def on_pad(page, stroke: list[tuple[float, float]], steps: int = 8, pad: str = "#pad") -> list[tuple[float, float]]:
    """Page coordinates of a stroke given in fractions of the pad, `steps` points per segment."""
    box = page.locator(pad).bounding_box()
    points = [stroke[0]] + [
        (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
        for a, b in itertools.pairwise(stroke)
        for i in range(1, steps + 1)
    ]
    return [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]


def draw(page, strokes: list[list[tuple[float, float]]], pad: str = "#pad") -> None:
    """Real mouse strokes: press, move through the points, release."""
    for stroke in strokes:
        start, *path = on_pad(page, stroke, pad=pad)
        page.mouse.move(*start)
        page.mouse.down()
        for point in path:
            page.mouse.move(*point)
        page.mouse.up()


def touch_draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Real touch input through the DevTools protocol (Playwright has no touch-move of its own)."""
    cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        start, *path = on_pad(page, stroke)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": start[0], "y": start[1]}]})
        for x, y in path:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def lit_pixels(page, pad: str = "pad") -> int:
    return page.evaluate(
        """(id) => {
        const pad = document.getElementById(id);
        const data = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
        let lit = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] > 127) lit += 1;
        return lit;
    }""",
        pad,
    )


def orange_pixels(page) -> int:
    """The number pad's pixels in the boxes' orange (#f5a623)."""
    return page.evaluate("""() => {
        const pad = document.getElementById("number-pad");
        const data = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
        let count = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] > 200 && data[i + 2] < 80) count += 1;
        return count;
    }""")


def screenshot(target, name: str, **options: object) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / name), **options)


@pytest.mark.parametrize(
    "strokes, digit",
    [
        pytest.param(ONE, "1", id="one-vertical-line"),
        pytest.param(SEVEN, "7", id="seven-bar-and-diagonal"),
        pytest.param(ZERO, "0", id="zero-loop"),
    ],
)
def test_a_drawn_digit_is_recognised_once_the_pointer_pauses(visit, strokes, digit):
    seen = visit()
    page = seen.page
    draw(page, strokes)
    expect(page.locator("#digit")).to_have_text(digit)
    expect(page.locator("#result-panel")).not_to_have_attribute("aria-busy", "true")
    # Debounced: dozens of pointer moves, one request (two at most on a slow machine), multipart.
    # (Chromium does not expose a blob body to Playwright; the server's answer shows it read the image.)
    requests = seen.predict_requests()
    assert 1 <= len(requests) <= 2, [r.url for r in requests]
    assert "return_image=true" in requests[-1].url and "model=lenet5" in requests[-1].url
    assert requests[-1].method == "POST"
    assert requests[-1].headers["content-type"].startswith("multipart/form-data; boundary=")
    answer = requests[-1].response().json()
    assert answer["predictions"][0]["digit"] == int(digit) and answer["predictions"][0]["image"]
    confidence = page.locator("#confidence").inner_text()
    assert confidence.endswith("%") and 10 < float(confidence[:-1]) <= 100
    expect(page.locator("#probabilities li.top .probability-digit")).to_have_text(digit)
    if digit == "7":
        screenshot(page, "desktop-drawn-7.png")


# A number on the wide pad (fractions of it): a 1, a 7 and a 1, apart.
NUMBER_171 = [
    [(0.15, 0.2), (0.15, 0.8)],
    [(0.35, 0.22), (0.5, 0.22)],
    [(0.5, 0.22), (0.45, 0.5), (0.4, 0.8)],
    [(0.7, 0.2), (0.7, 0.8)],
]


def test_a_written_number_is_read_digit_by_digit_with_its_boxes(visit):
    seen = visit()
    page = seen.page
    page.locator("#number-panel").scroll_into_view_if_needed()
    with page.expect_response("**/read") as answer:
        draw(page, NUMBER_171, pad="#number-pad")
    expect(page.locator("#number-text")).to_have_text("171")
    body = answer.value.json()
    # The page names no model: the server's reading model reads, and the page says which one it was.
    assert "?" not in answer.value.url
    expect(page.locator("#read-by")).to_have_text(f"{body['model']['name']} v{body['model']['version']}")
    boxes = [d["box"] for d in body["readings"][0]["digits"]]
    assert [x for x, *_ in boxes] == sorted(x for x, *_ in boxes) and len(boxes) == 3
    assert all(0 <= x < 840 and 0 <= y < 240 for x, y, *_ in boxes)  # in the pad's pixels
    expect(page.locator("#number-digits li")).to_have_count(3)
    # The boxes are drawn on the pad in orange over the white strokes.
    assert orange_pixels(page) > 100
    screenshot(page.locator("#number-panel"), "desktop-number-171.png")
    page.get_by_role("button", name="Remove last stroke").click()  # the last 1 goes: "17"
    expect(page.locator("#number-text")).to_have_text("17")
    page.get_by_role("button", name="Start over").click()
    expect(page.locator("#number-empty")).to_be_visible()
    expect(page.locator("#number-found")).to_be_hidden()


def test_undo_removes_the_last_stroke_and_an_empty_pad_clears_the_answer(visit):
    page = visit().page
    draw(page, SEVEN)
    expect(page.locator("#digit")).to_have_text("7")
    with_both = lit_pixels(page)
    with page.expect_response("**/predict?*") as answer:  # the remaining stroke is recognised again
        page.get_by_role("button", name="Undo").click()
    assert answer.value.ok
    assert 0 < lit_pixels(page) < with_both  # the diagonal is gone, the top bar stays
    page.get_by_role("button", name="Undo").click()
    assert lit_pixels(page) == 0
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#result-empty")).to_be_visible()


def test_an_uploaded_png_is_recognised_and_the_models_input_is_shown_pixelated(visit):
    page = visit().page
    page.set_input_files("#upload", DIGIT_PNG)
    expect(page.locator("#digit")).to_have_text("7")
    expect(page.locator("#served-by")).to_have_text("lenet5 v1")
    seen = page.locator("#seen")
    assert seen.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [28, 28]
    assert seen.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"
    assert seen.bounding_box()["width"] >= 84  # scaled up to be seen
    meters = page.get_by_role("meter")
    expect(meters).to_have_count(10)
    values = [float(meters.nth(d).get_attribute("aria-valuenow")) for d in range(10)]
    assert max(range(10), key=values.__getitem__) == 7 and values[7] > 90
    expect(page.get_by_role("meter", name="Probability of 7")).to_have_attribute("aria-valuetext", "100.0%")


def test_an_api_error_is_shown_in_an_alert(visit):
    page = visit().page
    page.set_input_files("#upload", {"name": "not-a-digit.png", "mimeType": "image/png", "buffer": b"no image here"})
    alert = page.locator("#predict-error")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("bad_image")
    expect(page.locator("#result")).to_be_hidden()
    page.set_input_files("#upload", DIGIT_PNG)  # a good image clears the error
    expect(page.locator("#digit")).to_have_text("7")
    expect(alert).to_be_hidden()
    # A bad image after a good one: the error, and not the last answer under it as if it were this image's (a new
    # user's finding: "It is a 7, 100.0% confident" stayed beside the alert).
    page.set_input_files("#upload", {"name": "again.png", "mimeType": "image/png", "buffer": b"no image here"})
    expect(alert).to_be_visible()
    expect(page.locator("#result")).to_be_hidden()


def test_an_api_error_on_the_number_panel_hides_the_last_reading(visit):
    page = visit().page
    page.locator("#number-panel").scroll_into_view_if_needed()
    page.set_input_files("#number-upload", str(REPO_ROOT / "examples" / "number.png"))
    expect(page.locator("#number-text")).to_have_text("4021")
    page.set_input_files("#number-upload", {"name": "not-a-number.png", "mimeType": "image/png", "buffer": b"nope"})
    alert = page.locator("#read-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("bad_image")
    expect(page.locator("#number-found")).to_be_hidden()
    expect(page.locator("#number-digits li")).to_have_count(0)
    assert orange_pixels(page) == 0 and lit_pixels(page, "number-pad") == 0  # nor the last picture with its boxes
    page.set_input_files("#number-upload", str(REPO_ROOT / "examples" / "number.png"))  # and reads again after it
    expect(page.locator("#number-text")).to_have_text("4021")
    expect(alert).to_be_hidden()


def test_a_blank_canvas_is_answered_no_digit_found(visit):
    # The pad sends nothing while it is empty, so its blank export goes in through the upload field instead:
    # the same PNG bytes the pad would send, answered by the real server and model.
    page = visit().page
    blank = base64.b64decode(page.evaluate("document.getElementById('pad').toDataURL('image/png')").split(",")[1])
    assert lit_pixels(page) == 0
    with page.expect_response("**/predict?*") as answer:
        page.set_input_files("#upload", {"name": "blank-canvas.png", "mimeType": "image/png", "buffer": blank})
    (prediction,) = answer.value.json()["predictions"]
    assert prediction["digit"] is None and prediction["reason"]
    expect(page.locator("#no-digit")).to_be_visible()
    expect(page.locator("#no-digit")).to_contain_text(re.compile("no digit found", re.IGNORECASE))
    expect(page.locator("#answer-found")).to_be_hidden()
    expect(page.locator("#probabilities")).to_be_hidden()
    expect(page.locator("#predict-error")).to_be_hidden()
    expect(page.locator("#no-digit-reason")).not_to_contain_text(prediction["reason"])  # its meaning, not its code
    screenshot(page.locator("#result-panel"), "no-digit-found.png")
    page.set_input_files("#upload", DIGIT_PNG)  # a digit is shown as usual again
    expect(page.locator("#digit")).to_have_text("7")
    expect(page.locator("#no-digit")).to_be_hidden()
    expect(page.locator("#probabilities")).to_be_visible()


def test_the_model_panel_explains_the_serving_model_and_switching_model_changes_predictions(visit):
    page = visit().page
    expect(page.locator("#model-name")).to_have_text("lenet5")
    expect(page.locator("#model-version")).to_have_text("1")
    expect(page.locator("#model-accuracy")).to_contain_text("99.11%")
    expect(page.locator("#model-parameters")).to_have_text("61,706")
    expect(page.locator("#layers-total")).to_have_text("61,706")
    rows = page.locator("#layers tbody tr")
    expect(rows).to_have_count(8)
    expect(rows.first).to_contain_text("6 filters x (5x5x1 weights + 1 bias)")
    expect(rows.first.locator("td.num")).to_have_text("156")
    for figure in ("#fig-confusion", "#fig-curves"):
        page.wait_for_function(
            "id => { const img = document.querySelector(id); return img.naturalWidth > 0 }", arg=figure
        )
    versions = page.locator("#versions tbody tr")
    expect(versions).to_have_count(1)
    expect(versions.first).to_contain_text("serving")
    page.locator("#model-panel").scroll_into_view_if_needed()
    screenshot(page.locator("#model-panel"), "model-panel-lenet5.png")

    page.select_option("#model-select", "lenet5-plus")
    expect(page.locator("#model-accuracy")).to_contain_text("99.67%")
    expect(page.locator("#layers-total")).to_have_text("468,778")
    page.set_input_files("#upload", DIGIT_PNG)
    expect(page.locator("#served-by")).to_have_text("lenet5-plus v1")
    expect(page.locator("#digit")).to_have_text("7")


def test_an_admin_starts_a_training_job_and_follows_it_to_the_end(visit):
    seen, other = visit(), visit()  # a second admin's tab, ready before the job starts
    page = seen.page
    page.fill("#token", "wrong-token")
    page.fill("#epochs", "1")
    page.fill("#train-limit", "300")
    page.select_option("#promote", "never")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#train-error")).to_contain_text("unauthorized")

    page.fill("#token", TOKEN)
    expect(page.locator("#arch option")).to_have_count(6)  # read from the server's OpenAPI schema
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#train-error")).to_be_hidden()
    expect(page.locator("#train-job")).not_to_be_empty()
    job_id = page.locator("#train-job").inner_text()

    # One job at a time: the other tab gets the 409 and can follow the running job instead.
    other.page.fill("#token", TOKEN)
    other.page.fill("#epochs", "1")
    other.page.get_by_role("button", name="Start training").click()
    expect(other.page.locator("#train-error")).to_contain_text("job_running")
    other.page.get_by_role("button", name="Follow the running job").click()
    expect(other.page.locator("#train-job")).to_have_text(job_id)

    expect(page.locator("#train-state")).to_have_text("succeeded", timeout=150_000)
    expect(page.locator("#train-result")).to_contain_text("not promoted")
    expect(page.locator("#train-result")).to_contain_text("Test accuracy")
    assert page.locator("#train-progress").evaluate("p => p.value") == 1
    expect(page.locator("#train-start")).to_be_enabled()
    expect(other.page.locator("#train-state")).to_have_text("succeeded")
    page.locator("#train-panel").scroll_into_view_if_needed()
    screenshot(page.locator("#train-panel"), "training-panel-succeeded.png")

    streams = [r for r in seen.requests if r.url.endswith("/events")]
    assert len(streams) == 1 and streams[0].headers.get("authorization") == f"Bearer {TOKEN}"
    # The token lives in a script variable only.
    assert TOKEN not in page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert TOKEN not in page.evaluate("document.cookie") and not page.context.cookies()
    # promote=never: still version 1 only
    expect(page.locator("#versions tbody tr")).to_have_count(1)


def test_a_phone_sized_screen_fits_and_draws_with_a_finger(visit):
    page = visit(PHONE, has_touch=True, is_mobile=True, device_scale_factor=2).page
    pad = page.locator("#pad")
    assert pad.evaluate("c => getComputedStyle(c).touchAction") == "none"
    width = pad.bounding_box()["width"]
    assert 200 <= width <= PHONE["width"] - 16
    touch_draw(page, ONE)
    expect(page.locator("#digit")).to_have_text("1")
    expect(page.locator("#quick-answer")).to_contain_text("1 (")  # the answer panel is below the fold
    expect(page.locator("#quick-answer")).to_be_in_viewport()
    screenshot(page, "phone-375x667.png")
    screenshot(page, "phone-375x667-full-page.png", full_page=True)
    # A mobile browser widens its layout viewport to fit overflowing content, so innerWidth is checked too.
    assert page.evaluate("[document.documentElement.scrollWidth, innerWidth]") == [PHONE["width"]] * 2
    page.locator("#layers-total").scroll_into_view_if_needed()  # the widest content: the tables
    assert page.evaluate("[document.documentElement.scrollWidth, innerWidth]") == [PHONE["width"]] * 2


def test_every_control_has_a_label_and_the_canvas_a_name(visit):
    page = visit().page
    unlabelled = page.evaluate("""() => [...document.querySelectorAll("input, select, textarea")]
        .filter(control => !control.labels.length && !control.getAttribute("aria-label")).map(c => c.id)""")
    assert unlabelled == []
    expect(page.get_by_role("img", name="Drawing pad")).to_be_visible()
    for name in ("Undo", "Clear", "Start training"):
        expect(page.get_by_role("button", name=name)).to_be_visible()


@pytest.mark.parametrize("key", [pytest.param("Enter", id="enter"), pytest.param("Space", id="space")])
def test_the_keyboard_reaches_clear_and_activates_it(visit, key):
    page = visit().page
    draw(page, ONE)
    expect(page.locator("#digit")).to_have_text("1")
    page.locator("body").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "clear":
            break
    else:
        pytest.fail("Tab never reached the Clear button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    page.keyboard.press(key)
    expect(page.locator("#result")).to_be_hidden()
    assert lit_pixels(page) == 0


def assert_stayed_on_the_server(seen: Visit, server: Server) -> None:
    """Every request the page made (scripts, styles, fonts, icons, the schema) went to the server itself."""
    hosts = {urlsplit(r.url).hostname for r in seen.requests if not r.url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, [r.url for r in seen.requests]
    urls = [r.url for r in seen.requests]
    assert server.url + "/openapi.json" in urls and any(u.startswith(server.url + "/static/vendor/") for u in urls)


def test_swagger_ui_at_docs_renders_the_operations_offline(visit, ui_server):
    seen = visit(path="/docs")
    page = seen.page
    predict = page.locator(".opblock.opblock-post").filter(has=page.locator('[data-path="/predict"]'))
    expect(predict).to_be_visible()
    expect(page.locator(".opblock")).not_to_have_count(0)
    predict.locator(".opblock-summary").click()  # the operation opens: the UI is live, not just painted
    expect(predict.locator(".opblock-body")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert_stayed_on_the_server(seen, ui_server)
    screenshot(page, "docs-swagger-ui.png")


def test_redoc_at_redoc_renders_the_operations_offline(visit, ui_server):
    seen = visit(path="/redoc")
    page = seen.page
    expect(page.get_by_role("heading", name="Predict Digits")).to_be_visible()
    expect(page.locator('[role="menuitem"]', has_text="Predict Digits").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert_stayed_on_the_server(seen, ui_server)
    screenshot(page, "docs-redoc.png")
