"""The latent explorer in a real headless Chromium (Playwright, Debian's chromium): the page loads from
its own server only, and each control (samples, sliders, interpolation, map, upload, drawing) calls
the API and changes what the page shows. The fixtures (``server``, ``browser``, ``page``,
``upload_png``) are in ``conftest.py``; a test is skipped where playwright or chromium is missing."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

WAIT = 30_000  # ms: a cold CPU under load is slow, but nothing here takes near this long
# ms: t-SNE of the map's points took 1.2-1.5 s here when quiet and 18-32 s with the two cores ten
# times oversubscribed; the bound is for a hang, not for speed
TSNE_WAIT = 180_000


# ---------------------------------------------------------------- helpers
def _srcs(page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all("imgs => imgs.map(img => img.getAttribute('src'))")


def _src(page, selector: str) -> str:
    return page.locator(selector).get_attribute("src")


def _wait_src_change(page, selector: str, before: str) -> str:
    """Wait until the (single) image at ``selector`` shows something other than ``before``; its src."""
    page.wait_for_function("([selector, before]) => { const img = document.querySelector(selector);"
                           " return img !== null && img.getAttribute('src') !== before; }",
                           arg=[selector, before], timeout=WAIT)
    return _src(page, selector)


def _api(path: str, method: str = "POST"):
    """A predicate for page.expect_response: a response to ``method path`` (path without its query)."""
    return lambda response: (urlsplit(response.url).path == path and response.request.method == method)


def _info(page, server: str) -> dict:
    response = page.request.get(server + "/api/info")
    assert response.ok
    return response.json()


def _status_is_clean(page) -> None:
    """The page's status line shows no error (API errors land there)."""
    status = page.locator("#status")
    assert "error" not in (status.get_attribute("class") or ""), status.text_content()


def _point_on_map(page) -> tuple[float, float]:
    """Page coordinates of a drawn point on the map canvas: the centre of a coloured (non-white,
    non-grey) pixel, found in the canvas's own pixels and scaled to its box on the page."""
    found = page.evaluate("""() => {
        const canvas = document.getElementById('map');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const cx = canvas.width / 2, cy = canvas.height / 2;
        let best = null, bestDistance = Infinity;
        for (let y = 0; y < canvas.height; y++) {
          for (let x = 0; x < canvas.width; x++) {
            const i = 4 * (y * canvas.width + x);
            const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
            if (Math.max(r, g, b) - Math.min(r, g, b) < 40) continue;  // white background, black marker
            const d = (x - cx) ** 2 + (y - cy) ** 2;  // prefer a point near the middle: well inside the map
            if (d < bestDistance) { best = [x + 0.5, y + 0.5]; bestDistance = d; }
          }
        }
        return best === null ? null : { x: best[0], y: best[1], w: canvas.width, h: canvas.height };
    }""")
    assert found is not None, "no point drawn on the map"
    canvas = page.locator("#map")
    canvas.scroll_into_view_if_needed()  # page.mouse works in the viewport's coordinates
    box = canvas.bounding_box()
    return (box["x"] + found["x"] * box["width"] / found["w"], box["y"] + found["y"] * box["height"] / found["h"])


def _map_pixels(page) -> str:
    return page.evaluate("() => document.getElementById('map').toDataURL()")


def _check_analysis(page, info: dict) -> tuple[float, float, str]:
    """The analysis panel after an upload or a drawing: a numeric score and threshold, a verdict
    consistent with them, an input and a reconstruction image, and ``limits.neighbours`` neighbours."""
    page.wait_for_selector("#analysis:not([hidden]) #analysis-recon img", timeout=WAIT)
    score, threshold = float(page.locator("#score").text_content()), float(page.locator("#threshold").text_content())
    flag = page.locator("#flag").text_content()
    assert flag in ("normal", "anomalous")
    if abs(score - threshold) > 0.01 * max(abs(threshold), 1e-3):  # shown rounded: judge only clear cases
        assert flag == ("anomalous" if score > threshold else "normal")
    assert page.locator("#score-name").text_content() == info["threshold"]["score"]
    assert page.locator("#analysis-input img").count() == 1
    assert _src(page, "#analysis-recon img").startswith("data:image/png;base64,")
    assert page.locator("#neighbours .item").count() == info["limits"]["neighbours"] == 8
    assert page.locator("#neighbours img").count() == 8
    captions = page.locator("#neighbours .caption").all_text_contents()
    assert all(caption.startswith("item ") and " · d " in caption for caption in captions), captions
    return score, threshold, flag


# ---------------------------------------------------------------- the tests
def test_page_loads_everything_from_its_own_server_without_console_errors(browser, server):
    """The offline promise: a fresh load asks nothing of any other origin (no CDN, no fonts), every
    response is a success, and the console stays clean (a CSP violation would show there)."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.add_init_script("window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
                            " event => window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));")
    page = context.new_page()
    requests, failures, console, errors = [], [], [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: None if response.ok else failures.append((response.url, response.status)))
    page.on("requestfailed", lambda request: failures.append((request.url, request.failure)))
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        document = page.goto(server + "/")
        assert "default-src 'self'" in document.headers["content-security-policy"]  # the CSP is on
        page.wait_for_selector("body[data-ready=true]", timeout=WAIT)
        page.wait_for_load_state("networkidle")
        origin = urlsplit(server)
        foreign = [url for url in requests if not url.startswith("data:")
                   and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)]
        assert not foreign, foreign
        paths = {urlsplit(url).path for url in requests}
        assert {"/", "/static/explorer.css", "/static/explorer.js", "/api/info", "/api/sample", "/api/map",
                "/api/interpolate", "/api/decode"} <= paths, paths
        assert not failures, failures
        assert not console, console
        assert page.evaluate("() => window.cspViolations") == []
        assert not errors, errors
        assert "latent dimensions" in page.locator("#run-info").text_content()
        _status_is_clean(page)
    finally:
        context.close()


def test_first_view_shows_samples_slider_image_interpolation_and_map(page, server):
    info = _info(page, server)
    assert page.locator("#samples img").count() == 16
    assert page.locator("#sliders input[type=range]").count() == min(8, len(info["dims"]))
    assert page.locator("#slider-output img").count() == 1
    assert page.locator("#interp-output img").count() == 1
    assert not page.locator("#interp-position").is_disabled()
    assert page.locator("#legend .legend").count() == len(set(info["classes"])) == 10
    assert page.locator("#draw-wrap").is_visible()  # grey 8x8 images: the drawing pad is offered
    assert page.locator("#analysis").is_hidden()
    assert page.locator("#run-info").text_content().startswith(f"{info['preset']} · image data 1×8×8")
    _status_is_clean(page)


def test_moving_a_latent_slider_changes_the_decoded_image(page):
    before = _src(page, "#slider-output img")
    slider = page.locator("#sliders input[type=range]").first
    top = slider.get_attribute("max")
    with page.expect_response(_api("/api/decode"), timeout=WAIT) as caught:
        slider.focus()
        page.keyboard.press("End")  # to the slider's max; fires 'input' as a drag would
    response = caught.value
    assert response.status == 200
    sent = json.loads(response.request.post_data)
    assert len(sent["z"]) == 1
    assert len(response.json()["items"]) == 1
    after = _wait_src_change(page, "#slider-output img", before)
    assert after == response.json()["items"][0]["png"]
    assert float(slider.input_value()) == pytest.approx(float(top))
    assert slider.locator("xpath=following-sibling::output").text_content() == f"+{float(top):.2f}"
    _status_is_clean(page)


def test_filling_a_slider_to_its_max_decodes_the_moved_code(page, server):
    """fill() on the range input (Playwright fires 'input'): the code sent is the mean code with that
    one dimension moved by the slider's value."""
    info = _info(page, server)
    before = _src(page, "#slider-output img")
    slider = page.locator("#sliders input[type=range]").nth(1)
    dim = int(slider.get_attribute("data-dim"))
    with page.expect_response(_api("/api/decode"), timeout=WAIT) as caught:
        slider.fill(slider.get_attribute("max"))
    assert caught.value.status == 200
    z = json.loads(caught.value.request.post_data)["z"][0]
    moved = float(slider.input_value())
    assert moved > 0
    assert z[dim] == pytest.approx(info["center"][dim] + moved, abs=1e-6)
    others = [d for d in range(len(z)) if d != dim]
    assert [z[d] for d in others] == pytest.approx([info["center"][d] for d in others])
    _wait_src_change(page, "#slider-output img", before)


def test_temperature_and_reseed_change_the_samples(page):
    first = _srcs(page, "#samples img")
    assert len(first) == 16 and len(set(first)) > 1

    with page.expect_response(_api("/api/sample"), timeout=WAIT) as caught:
        page.locator("#reseed").click()
    assert caught.value.status == 200
    assert json.loads(caught.value.request.post_data)["seed"] == 1
    page.wait_for_function("before => [...document.querySelectorAll('#samples img')].map(i => i.src).join() !== before",
                           arg=",".join(first), timeout=WAIT)
    reseeded = _srcs(page, "#samples img")
    assert reseeded != first and len(reseeded) == 16
    assert page.locator("#seed-value").text_content() == "1"

    with page.expect_response(_api("/api/sample"), timeout=WAIT) as caught:
        page.locator("#temperature").fill("0")
    assert caught.value.status == 200
    assert json.loads(caught.value.request.post_data)["temperature"] == 0
    assert page.locator("#temperature-value").text_content() == "0.00"
    # at temperature 0 every sample is the decoded zero code: sixteen copies of one image
    page.wait_for_function("() => new Set([...document.querySelectorAll('#samples img')].map(i => i.src)).size === 1",
                           timeout=WAIT)
    assert len(_srcs(page, "#samples img")) == 16


def test_interpolation_slider_moves_along_the_path(page):
    start = _src(page, "#interp-output img")
    assert start == _src(page, "#interp-a-view img")  # position 0 is the start item
    position = page.locator("#interp-position")
    last = position.get_attribute("max")
    assert last == "32"
    position.fill(last)
    assert page.locator("#interp-t").text_content() == "t = 1.00"
    end = _wait_src_change(page, "#interp-output img", start)
    assert end == _src(page, "#interp-b-view img")  # the last position is the end item
    position.fill("16")
    assert page.locator("#interp-t").text_content() == "t = 0.50"
    assert _src(page, "#interp-output img") not in (start, end)
    position.fill("0")
    assert _src(page, "#interp-output img") == start


def test_interpolate_button_between_other_items(page):
    start = _src(page, "#interp-a-view img")
    page.locator("#interp-a").fill("5")
    page.locator("#interp-path").select_option("linear")
    with page.expect_response(_api("/api/interpolate"), timeout=WAIT) as caught:
        page.locator("#interp-go").click()
    assert caught.value.status == 200
    sent = json.loads(caught.value.request.post_data)
    assert sent["a"] == {"index": 5} and sent["b"] == {"index": 1} and sent["path"] == "linear"
    assert sent["steps"] == 33
    page.wait_for_function("before => document.querySelector('#interp-a-view img').getAttribute('src') !== before",
                           arg=start, timeout=WAIT)
    assert page.locator("#interp-a-view .caption").text_content() == "item 5, decoded"


def test_clicking_the_map_decodes_that_point(page):
    assert page.locator("#map-output img").count() == 0
    before_slider = _src(page, "#slider-output img")
    before_pixels = _map_pixels(page)
    x, y = _point_on_map(page)
    with page.expect_response(_api("/api/map/decode"), timeout=WAIT) as caught:
        page.mouse.click(x, y)
    response = caught.value
    assert response.status == 200
    sent = json.loads(response.request.post_data)
    assert sent["method"] == "pca"
    data = response.json()
    assert len(data["z"]) == 8 and len(data["items"]) == 1
    page.wait_for_selector("#map-output img", timeout=WAIT)
    assert _src(page, "#map-output img") == data["items"][0]["png"]
    assert page.locator("#map-where").text_content().startswith("decoded at (")
    # the point becomes the sliders' base, and the map marks where it was clicked
    page.wait_for_function("() => document.getElementById('slider-base').textContent.startsWith('base: map point')",
                           timeout=WAIT)
    _wait_src_change(page, "#slider-output img", before_slider)
    assert _map_pixels(page) != before_pixels
    _status_is_clean(page)


def test_hovering_the_map_shows_the_item(page):
    tip = page.locator("#map-tip")
    assert tip.is_hidden()
    x, y = _point_on_map(page)
    with page.expect_response(lambda r: urlsplit(r.url).path.startswith("/api/input/"), timeout=WAIT) as caught:
        page.mouse.move(x, y)
    assert caught.value.status == 200
    page.wait_for_selector("#map-tip:not([hidden]) .item img", timeout=WAIT)
    caption = tip.locator(".caption").text_content()
    index = int(urlsplit(caught.value.url).path.rsplit("/", 1)[1])
    assert caption.startswith(f"item {index} · ")  # the digits have labels: "item 12 · 3"
    assert caption.split(" · ")[1] in [str(d) for d in range(10)]
    assert _src(page, "#map-tip img") == caught.value.json()["item"]["png"]
    page.mouse.move(1, 1)  # off the canvas: the tip goes
    page.wait_for_selector("#map-tip", state="hidden", timeout=WAIT)


def test_choosing_tsne_redraws_the_map_and_clicks_decode_on_it(page):
    before = _map_pixels(page)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/map" and "method=tsne" in r.url,
                              timeout=TSNE_WAIT) as caught:
        page.locator("#map-method").select_option("tsne")
    assert caught.value.status == 200
    assert caught.value.json()["method"] == "tsne"
    page.wait_for_function("before => document.getElementById('map').toDataURL() !== before", arg=before,
                           timeout=WAIT)
    page.wait_for_function("() => document.getElementById('status').textContent === ''", timeout=WAIT)
    x, y = _point_on_map(page)
    with page.expect_response(_api("/api/map/decode"), timeout=WAIT) as decoded:
        page.mouse.click(x, y)
    assert decoded.value.status == 200
    assert json.loads(decoded.value.request.post_data)["method"] == "tsne"
    page.wait_for_selector("#map-output img", timeout=WAIT)
    _status_is_clean(page)


def test_uploading_an_image_shows_its_score(page, server, upload_png):
    info = _info(page, server)
    with page.expect_response(_api("/api/reconstruct"), timeout=WAIT) as caught:
        page.locator("#upload-file").set_input_files(upload_png)
    assert caught.value.status == 200
    data = caught.value.json()
    score, threshold, flag = _check_analysis(page, info)
    assert score == pytest.approx(data["score"], rel=1e-2, abs=1e-2)
    assert threshold == pytest.approx(info["threshold"]["value"], rel=1e-2, abs=1e-2)
    assert flag == ("anomalous" if data["flagged"] else "normal")
    assert page.locator("#analysis-input .caption").text_content() == upload_png.name
    assert _src(page, "#analysis-recon img") == data["reconstruction"]["png"]
    _status_is_clean(page)


def test_drawing_and_analysing_gives_a_score(page, server):
    info = _info(page, server)
    pad = page.locator("#draw")
    pad.scroll_into_view_if_needed()  # page.mouse works in the viewport's coordinates
    box = pad.bounding_box()
    cx = box["x"] + box["width"] / 2
    page.mouse.move(cx, box["y"] + 0.2 * box["height"])
    page.mouse.down()
    for step in range(1, 11):  # a vertical stroke, like a one
        page.mouse.move(cx, box["y"] + (0.2 + 0.06 * step) * box["height"])
    page.mouse.up()
    inked = page.evaluate("""() => { const c = document.getElementById('draw');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }""")
    assert inked > 500  # the stroke is on the pad
    with page.expect_response(_api("/api/reconstruct"), timeout=WAIT) as caught:
        page.locator("#draw-go").click()
    assert caught.value.status == 200
    _check_analysis(page, info)
    assert page.locator("#analysis-input .caption").text_content() == "your drawing"
    # the input shown is the drawing as the server read it, at the model's size
    assert _src(page, "#analysis-input img") == caught.value.json()["item"]["png"]
    _status_is_clean(page)


def test_analysed_input_becomes_the_slider_base_and_interpolation_end(page, server, upload_png):
    with page.expect_response(_api("/api/reconstruct"), timeout=WAIT) as caught:
        page.locator("#upload-file").set_input_files(upload_png)
    z = caught.value.json()["z"]
    page.wait_for_selector("#analysis:not([hidden])", timeout=WAIT)
    with page.expect_response(_api("/api/decode"), timeout=WAIT) as decoded:
        page.locator("#use-base").click()
    assert json.loads(decoded.value.request.post_data)["z"][0] == pytest.approx(z)
    assert page.locator("#slider-base").text_content() == "base: your input"
    with page.expect_response(_api("/api/interpolate"), timeout=WAIT) as path:
        page.locator("#use-b").click()
    assert path.value.status == 200
    assert json.loads(path.value.request.post_data)["b"]["z"] == pytest.approx(z)
    page.wait_for_function("() => document.querySelector('#interp-b-view .caption')?.textContent"
                           " === 'your input, decoded'", timeout=WAIT)


def test_slider_reset_goes_back_to_the_mean_code_image(page):
    mean = _src(page, "#slider-output img")
    slider = page.locator("#sliders input[type=range]").first
    with page.expect_response(_api("/api/decode"), timeout=WAIT):
        slider.fill(slider.get_attribute("min"))
    _wait_src_change(page, "#slider-output img", mean)
    with page.expect_response(_api("/api/decode"), timeout=WAIT):
        page.locator("#slider-reset").click()
    page.wait_for_function("mean => document.querySelector('#slider-output img').getAttribute('src') === mean",
                           arg=mean, timeout=WAIT)  # the same code decodes to the same picture
    assert float(slider.input_value()) == pytest.approx(0, abs=1e-9)  # "0" snapped to the step grid: ~1e-16
    assert page.locator("#slider-base").text_content() == "base: mean code"


def test_analysing_a_held_out_item_leaves_it_out_of_its_neighbours(page, server):
    info = _info(page, server)
    page.locator("#item-index").fill("7")
    with page.expect_response(_api("/api/item/7", "GET"), timeout=WAIT) as caught:
        page.locator("#item-go").click()
    assert caught.value.status == 200
    _check_analysis(page, info)
    assert page.locator("#analysis-input .caption").text_content() == "item 7"
    indices = [int(caption.split(" · ")[0].removeprefix("item "))
               for caption in page.locator("#neighbours .caption").all_text_contents()]
    assert len(indices) == 8 and 7 not in indices and len(set(indices)) == 8


def test_api_errors_are_shown_in_the_status_line(page, tmp_path):
    page.locator("#item-index").fill("99999")
    with page.expect_response(_api("/api/item/99999", "GET"), timeout=WAIT) as caught:
        page.locator("#item-go").click()
    assert caught.value.status == 400
    page.wait_for_selector("#status.error", timeout=WAIT)
    assert "99999" in page.locator("#status").text_content()
    assert page.locator("#analysis").is_hidden()

    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with page.expect_response(_api("/api/reconstruct"), timeout=WAIT) as caught:
        page.locator("#upload-file").set_input_files(text)
    assert caught.value.status == 415
    page.wait_for_function("() => document.getElementById('status').textContent.includes('expected an image')",
                           timeout=WAIT)
    assert page.locator("#analysis").is_hidden()


def _hold(page, pattern: str) -> list:
    """Intercept requests matching ``pattern`` and keep them waiting; the held routes, to continue later."""
    held: list = []
    page.route(pattern, lambda route: held.append(route))
    return held


def _until_held(page, held: list) -> None:
    for _ in range(WAIT // 10):  # lets Playwright dispatch the route to ``held``
        if held:
            return
        page.wait_for_timeout(10)
    pytest.fail("the request was never made")


def _settle(page) -> None:
    """Let the page finish what a just-finished response sets off (its JSON parse and drawing)."""
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 100)))")


def test_map_tip_stays_hidden_when_the_pointer_leaves_before_the_item_arrives(page):
    held = _hold(page, "**/api/input/*")
    x, y = _point_on_map(page)
    page.mouse.move(x, y)
    _until_held(page, held)
    page.mouse.move(1, 1)  # off the map before the item arrives
    assert page.locator("#map-tip").is_hidden(), "shown before the item arrived"
    with page.expect_response(lambda r: "/api/input/" in r.url, timeout=WAIT) as caught:
        held[0].continue_()
    caught.value.finished()
    _settle(page)
    assert page.locator("#map-tip").is_hidden()


def test_switching_back_to_pca_before_tsne_arrives_keeps_pca(page):
    pca = _map_pixels(page)
    held = _hold(page, "**/api/map?method=tsne")
    method = page.locator("#map-method")
    method.select_option("tsne")
    _until_held(page, held)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/map" and "method=pca" in r.url, timeout=WAIT):
        method.select_option("pca")
    page.wait_for_function("() => document.getElementById('status').textContent === ''", timeout=WAIT)
    with page.expect_response(lambda r: "method=tsne" in r.url, timeout=WAIT) as caught:
        held[0].continue_()
    caught.value.finished()
    _settle(page)
    assert method.input_value() == "pca"
    assert _map_pixels(page) == pca
    x, y = _point_on_map(page)
    with page.expect_response(_api("/api/map/decode"), timeout=WAIT) as decoded:
        page.mouse.click(x, y)
    assert json.loads(decoded.value.request.post_data)["method"] == "pca"


def test_a_conditional_model_samples_one_row_per_class_and_by_chosen_class(browser, cvae_server):
    """Per class: with no class chosen the grid has one labelled row per class (the API cycles through
    the classes); choosing one samples and decodes under that label."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        with page.expect_response(_api("/api/sample"), timeout=WAIT) as first:
            page.goto(cvae_server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=WAIT)
        info = _info(page, cvae_server)
        per_class = min(8, info["limits"]["max_items"] // len(info["classes"]))
        assert json.loads(first.value.request.post_data)["n"] == per_class * len(info["classes"])
        assert page.locator("#class-control").is_visible()
        labels = page.locator("#samples .row-label").all_text_contents()
        assert labels == info["classes"]
        counts = page.locator("#samples .class-row").evaluate_all(
            "rows => rows.map(r => r.querySelectorAll('img').length)")
        assert counts == [per_class] * len(info["classes"])
        with page.expect_response(_api("/api/sample"), timeout=WAIT) as chosen:
            page.locator("#class").select_option("3")
        assert json.loads(chosen.value.request.post_data)["label"] == 3 and chosen.value.status == 200
        page.wait_for_function("() => document.querySelectorAll('#samples > .item').length === 16", timeout=WAIT)
        slider = page.locator("#sliders input[type=range]").first
        with page.expect_response(_api("/api/decode"), timeout=WAIT) as decoded:
            slider.fill(slider.get_attribute("max"))
        assert json.loads(decoded.value.request.post_data)["label"] == 3 and decoded.value.status == 200
        _status_is_clean(page)
    finally:
        context.close()
    assert not errors, errors


def test_a_table_run_shows_rows_in_tables_and_analyses_an_item(browser, table_server):
    """Tables: samples side by side in one table (a column per sample, a row per data column), no
    upload control, and an item's analysis with its neighbours as one table."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(table_server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=WAIT)
        info = _info(page, table_server)
        assert info["kind"] == "table" and not info["uploads"]
        headers = page.locator("#samples .rows-table thead th").all_text_contents()
        assert headers == ["", *[f"#{i}" for i in range(1, 17)]]
        first_column = page.locator("#samples .rows-table tbody td:first-child").all_text_contents()
        assert first_column[-1] == "strong" and len(first_column) == 14
        assert not page.locator("#upload-file").is_visible()
        with page.expect_response(_api("/api/item/2", "GET"), timeout=WAIT) as caught:
            page.locator("#item-index").fill("2")
            page.locator("#item-go").click()
        assert caught.value.status == 200
        page.wait_for_selector("#neighbours .rows-table", timeout=WAIT)  # drawn after the answer arrives
        captions = page.locator("#neighbours .rows-table thead th").all_text_contents()[1:]
        assert len(captions) == info["limits"]["neighbours"] and all(c.startswith("item ") for c in captions)
        assert page.locator("#flag").text_content() in ("normal", "anomalous")
        _status_is_clean(page)
    finally:
        context.close()
    assert not errors, errors


def test_a_text_run_shows_sentences_and_a_slider_decodes_a_new_one(browser, text_server):
    """Text models show strings: samples, the slider's decoding, an analysed item and its neighbours;
    no upload or drawing pad."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(text_server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=WAIT)
        samples = page.locator("#samples .item pre").all_text_contents()
        assert len(samples) == 16 and all(isinstance(s, str) and s for s in samples)
        assert not page.locator("#upload-file").is_visible() and not page.locator("#draw").is_visible()
        slider = page.locator("#sliders input[type=range]").first
        with page.expect_response(_api("/api/decode"), timeout=WAIT) as decoded:
            slider.fill(slider.get_attribute("max"))
        text = decoded.value.json()["items"][0]["text"]
        page.wait_for_function("t => document.querySelector('#slider-output pre')?.textContent === t",
                               arg=text or "(empty)", timeout=WAIT)
        with page.expect_response(_api("/api/item/3", "GET"), timeout=WAIT):
            page.locator("#item-index").fill("3")
            page.locator("#item-go").click()
        page.wait_for_selector("#neighbours .item pre", timeout=WAIT)
        assert page.locator("#neighbours .item pre").count() == 8
        _status_is_clean(page)
    finally:
        context.close()
    assert not errors, errors
