"""The explorer's JSON API in process (FastAPI's TestClient): what each endpoint returns for the three
runs of ``conftest.py`` (digits, a conditional digits model, a wine table with text and holes), and
what each bad request gets back.

Answers are checked against each other and against the run, not only by status: a code from
``/api/item`` decodes to that item's reconstruction, an uploaded held-out digit lands on its own code,
the anomaly threshold is the 99th percentile of the held-out scores, neighbours are the nearest codes.
Every error is JSON ``{"error": one line}`` with no traceback; a body over the cap is a 413.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from dataclasses import asdict

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vaekit.web import create_app
from vaekit.web.explorer import Limits

LIMITS = Limits()
API_PATHS = ["/api/decode", "/api/info", "/api/input/{index}", "/api/interpolate", "/api/item/{index}", "/api/map",
             "/api/map/decode",
             "/api/reconstruct", "/api/sample"]
HUGE = (2100, 2000)  # an upload's width and height: over max_pixels
SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


# ---------------------------------------------------------------------------- helpers
def pixels(item: dict) -> np.ndarray:
    """An item's ``data:image/png;base64,...`` -> its pixels, uint8 (H, W)."""
    prefix, encoded = item["png"].split(",", 1)
    assert prefix == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))


def png(picture: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def upload(client: TestClient, data: bytes, content_type: str = "image/png", name: str = "digit.png"):
    return client.post("/api/reconstruct", files={"file": (name, data, content_type)})


def assert_error(response, status: int) -> str:
    """The response is ``status`` with a JSON ``{"error": one line}`` and no traceback; the line."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and error.strip()
    assert "\n" not in error
    assert "Traceback" not in response.text and 'File "' not in response.text
    return error


def held_out_png(run, index: int) -> bytes:
    """Held-out digit ``index`` as the PNG a user would draw: levels 0..16 scaled to 0..255."""
    levels = run.inputs().x[index, 0].astype(np.float64)  # (8, 8), 0..16
    return png(Image.fromarray(np.round(levels * 255 / 16).astype(np.uint8)))


@pytest.fixture(scope="module")
def info(image_client) -> dict:
    return image_client.get("/api/info").json()


@pytest.fixture(scope="module")
def items(image_client, info) -> list[dict]:
    """Every held-out digit as ``/api/item`` gives it (359 calls, about 4 s: several tests read them)."""
    return [image_client.get(f"/api/item/{i}").json() for i in range(info["inputs"])]


# ---------------------------------------------------------------------------- /api/info
def test_info_describes_the_digits_run(info, digits_vae) -> None:
    """Kind, shape, latent size, classes, input count, limits; dims sorted by KL, most first."""
    assert info["kind"] == "image" and info["shape"] == [1, 8, 8]
    assert info["latent_dim"] == 8 and info["conditional"] is False
    assert info["classes"] == [str(d) for d in range(10)]
    assert info["inputs"] == len(digits_vae.inputs()) and info["labelled"] is True
    assert info["uploads"] is True
    assert info["limits"] == asdict(LIMITS)
    assert len(info["center"]) == 8 and all(np.isfinite(info["center"]))
    kl = [d["kl"] for d in info["dims"]]
    assert kl == sorted(kl, reverse=True) and kl[0] > 0
    assert sorted(d["index"] for d in info["dims"]) == list(range(8))
    assert all(d["spread"] >= 0 for d in info["dims"])
    assert info["threshold"]["score"] == "recon" and np.isfinite(info["threshold"]["value"])
    assert info["threshold"]["level"] == 0.99


# ---------------------------------------------------------------------------- /api/sample, /api/decode
def test_sample_gives_n_grey_images_of_the_run_shape(image_client) -> None:
    """n items, each an 8x8 grey PNG."""
    answer = image_client.post("/api/sample", json={"n": 5, "seed": 3}).json()
    assert len(answer["items"]) == 5
    for item in answer["items"]:
        picture = pixels(item)
        assert picture.shape == (8, 8) and picture.dtype == np.uint8


def test_temperature_zero_samples_the_prior_mode_and_one_spreads_them(image_client) -> None:
    """At temperature 0 every sample is the decoding of z = 0 (the prior's mode); at 1 they differ."""
    cold = image_client.post("/api/sample", json={"n": 4, "temperature": 0}).json()["items"]
    assert len({item["png"] for item in cold}) == 1
    mode = image_client.post("/api/decode", json={"z": [[0.0] * 8]}).json()["items"][0]
    np.testing.assert_array_equal(pixels(cold[0]), pixels(mode))
    warm = image_client.post("/api/sample", json={"n": 4, "temperature": 1}).json()["items"]
    assert len({item["png"] for item in warm}) == 4


def test_same_seed_same_samples_another_seed_others(image_client) -> None:
    first = image_client.post("/api/sample", json={"n": 4, "seed": 7}).json()
    again = image_client.post("/api/sample", json={"n": 4, "seed": 7}).json()
    other = image_client.post("/api/sample", json={"n": 4, "seed": 8}).json()
    assert first == again
    assert first != other


def test_decode_gives_one_item_per_row_in_order(image_client) -> None:
    """Decoding rows together is decoding each alone, in the same order."""
    a, b = [0.5] * 8, [-1.0, 2.0, 0.0, 1.0, -2.0, 0.0, 3.0, -0.5]
    both = image_client.post("/api/decode", json={"z": [a, b]}).json()["items"]
    alone = [image_client.post("/api/decode", json={"z": [row]}).json()["items"][0] for row in (a, b)]
    assert len(both) == 2
    for together, single in zip(both, alone, strict=True):
        np.testing.assert_allclose(pixels(together), pixels(single), atol=1)
    assert not np.array_equal(pixels(both[0]), pixels(both[1]))


def test_decode_accepts_codes_at_the_cap(image_client) -> None:
    """|z| = max_abs_latent is allowed (the cap is inclusive)."""
    cap = LIMITS.max_abs_latent
    answer = image_client.post("/api/decode", json={"z": [[cap, -cap] * 4]})
    assert answer.status_code == 200 and len(answer.json()["items"]) == 1


# ---------------------------------------------------------------------------- /api/item
def test_item_code_decodes_to_its_reconstruction(image_client, digits_vae) -> None:
    """An item: its own pixels, label, code, reconstruction; decoding its code gives the reconstruction."""
    answer = image_client.get("/api/item/3").json()
    levels = digits_vae.inputs().x[3, 0].astype(np.float64)
    np.testing.assert_allclose(pixels(answer["item"]), levels * 255 / 16, atol=1)
    assert answer["label"] == str(int(digits_vae.inputs().y[3]))
    assert len(answer["z"]) == 8
    decoded = image_client.post("/api/decode", json={"z": [answer["z"]]}).json()["items"][0]
    np.testing.assert_allclose(pixels(decoded), pixels(answer["reconstruction"]), atol=1)


def test_item_neighbours_are_the_nearest_other_codes_sorted(items) -> None:
    """Neighbours: limits.neighbours of them, the item left out, sorted by distance, and exactly the
    nearest held-out codes at their Euclidean distances."""
    codes = np.array([item["z"] for item in items])  # (N, L)
    for index in (0, 3, 100, len(items) - 1):
        neighbours = items[index]["neighbours"]
        found = [n["index"] for n in neighbours]
        distances = [n["distance"] for n in neighbours]
        assert len(neighbours) == LIMITS.neighbours
        assert index not in found
        assert distances == sorted(distances)
        true = np.linalg.norm(codes - codes[index], axis=1)  # (N,)
        true[index] = np.inf
        assert found == list(np.argsort(true, kind="stable")[: LIMITS.neighbours])
        np.testing.assert_allclose(distances, true[found], atol=1e-4)
        for neighbour in neighbours:
            assert neighbour["label"] == items[neighbour["index"]]["label"]
            assert neighbour["png"] == items[neighbour["index"]]["item"]["png"]


def test_flagged_is_score_over_the_threshold_the_99th_percentile(items, info) -> None:
    """No threshold is saved, so the explorer's is the 99th percentile of the held-out scores: about
    1% of the held-out digits are flagged, each exactly when its score is over it."""
    threshold = info["threshold"]["value"]
    scores = np.array([item["score"] for item in items])
    assert all(item["threshold"] == threshold for item in items)
    assert all(item["flagged"] == (item["score"] > threshold) for item in items)
    assert np.quantile(scores, 0.99) == pytest.approx(threshold, rel=1e-5)
    assert 1 <= sum(item["flagged"] for item in items) <= 0.02 * len(items)


def test_item_out_of_range_is_a_400_naming_the_range(image_client, info) -> None:
    last = info["inputs"] - 1
    error = assert_error(image_client.get(f"/api/item/{info['inputs']}"), 400)
    assert f"0..{last}" in error
    assert_error(image_client.get("/api/item/-1"), 422)
    assert_error(image_client.get("/api/item/three"), 422)


# ---------------------------------------------------------------------------- /api/interpolate
@pytest.mark.parametrize("path", ["linear", "spherical"])
def test_interpolation_runs_from_one_item_to_the_other(image_client, path) -> None:
    """steps points; the ends are the two items' codes and decode to their reconstructions."""
    a, b = image_client.get("/api/item/3").json(), image_client.get("/api/item/9").json()
    answer = image_client.post("/api/interpolate", json={"a": {"index": 3}, "b": {"index": 9}, "steps": 5,
                                                         "path": path}).json()
    assert len(answer["items"]) == 5 and len(answer["z"]) == 5
    np.testing.assert_allclose(answer["z"][0], a["z"], atol=1e-5)
    np.testing.assert_allclose(answer["z"][-1], b["z"], atol=1e-5)
    ends = image_client.post("/api/decode", json={"z": [a["z"], b["z"]]}).json()["items"]
    np.testing.assert_allclose(pixels(answer["items"][0]), pixels(ends[0]), atol=1)
    np.testing.assert_allclose(pixels(answer["items"][-1]), pixels(ends[1]), atol=1)
    np.testing.assert_allclose(pixels(answer["items"][0]), pixels(a["reconstruction"]), atol=1)


def test_linear_path_between_codes_is_evenly_spaced_and_spherical_is_not(image_client) -> None:
    a, b = [0.0] * 8, [1.0] * 8
    linear = image_client.post("/api/interpolate", json={"a": {"z": a}, "b": {"z": b}, "steps": 3,
                                                         "path": "linear"}).json()
    np.testing.assert_allclose(linear["z"], [a, [0.5] * 8, b], atol=1e-6)
    c = [1.0, -1.0] * 4
    spherical = image_client.post("/api/interpolate", json={"a": {"z": b}, "b": {"z": c}, "steps": 3}).json()
    assert not np.allclose(spherical["z"][1], (np.array(b) + np.array(c)) / 2, atol=1e-3)


def test_interpolation_endpoints_need_exactly_one_of_index_and_z(image_client) -> None:
    both = {"a": {"index": 1, "z": [0.0] * 8}, "b": {"index": 2}}
    assert "exactly one" in assert_error(image_client.post("/api/interpolate", json=both), 422)
    neither = {"a": {}, "b": {"index": 2}}
    assert_error(image_client.post("/api/interpolate", json=neither), 422)
    assert_error(image_client.post("/api/interpolate", json={"a": {"index": 10_000}, "b": {"index": 2}}), 400)


# ---------------------------------------------------------------------------- /api/map, /api/map/decode
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_map_has_one_labelled_point_per_held_out_input(image_client, info, items, method) -> None:
    answer = image_client.get("/api/map", params={"method": method}).json()
    assert answer["method"] == method
    assert answer["invertible"] is (method == "pca")
    assert answer["classes"] == info["classes"]
    points = np.array(answer["points"])
    assert points.shape == (info["inputs"], 2) and np.isfinite(points).all()
    assert len(np.unique(points, axis=0)) > 0.9 * len(points)  # a spread, not a collapse
    assert [answer["classes"][label] for label in answer["labels"]] == [item["label"] for item in items]


def test_pca_map_decodes_through_the_mean_along_unit_directions(image_client, info) -> None:
    """PCA's way back: (0, 0) is the mean code, a unit step on the map is a unit step in latent space;
    the items are the decoding of the returned code."""
    origin = image_client.post("/api/map/decode", json={"method": "pca", "x": 0, "y": 0}).json()
    assert len(origin["z"]) == info["latent_dim"]
    np.testing.assert_allclose(origin["z"], info["center"], atol=1e-4)
    step = image_client.post("/api/map/decode", json={"method": "pca", "x": 1, "y": 0}).json()
    assert np.linalg.norm(np.subtract(step["z"], origin["z"])) == pytest.approx(1.0, abs=1e-4)
    decoded = image_client.post("/api/decode", json={"z": [step["z"]]}).json()["items"][0]
    assert len(step["items"]) == 1
    np.testing.assert_allclose(pixels(step["items"][0]), pixels(decoded), atol=1)


def test_map_decode_clips_far_points_to_the_latent_cap(image_client) -> None:
    answer = image_client.post("/api/map/decode", json={"method": "pca", "x": 1e5, "y": -1e5}).json()
    assert max(abs(v) for v in answer["z"]) == LIMITS.max_abs_latent


def test_tsne_map_decodes_a_mapped_point_to_its_own_code(image_client, items) -> None:
    """t-SNE has no inverse: the blend of the nearest mapped points, which at a point is that point."""
    points = image_client.get("/api/map", params={"method": "tsne"}).json()["points"]
    x, y = points[3]
    answer = image_client.post("/api/map/decode", json={"method": "tsne", "x": x, "y": y}).json()
    np.testing.assert_allclose(answer["z"], items[3]["z"], atol=1e-2)


def test_map_refuses_unknown_methods_and_non_finite_points(image_client) -> None:
    assert_error(image_client.get("/api/map", params={"method": "umap"}), 422)
    assert_error(image_client.post("/api/map/decode", json={"method": "umap", "x": 0, "y": 0}), 422)
    raw = '{"method": "pca", "x": NaN, "y": 0}'
    assert_error(image_client.post("/api/map/decode", content=raw, headers={"content-type": "application/json"}),
                 422)
    assert_error(image_client.post("/api/map/decode", json={"method": "pca", "x": 1e7, "y": 0}), 422)


# ---------------------------------------------------------------------------- /api/reconstruct
def test_uploaded_held_out_digit_lands_on_its_own_code(image_client, digits_vae, items) -> None:
    """A held-out digit as a PNG is read back to the same pixels and the same code; its nearest
    neighbour is itself (an upload excludes nothing); uploads carry no label."""
    answer = upload(image_client, held_out_png(digits_vae, 3))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    np.testing.assert_array_equal(pixels(result["item"]), pixels(items[3]["item"]))
    np.testing.assert_allclose(result["z"], items[3]["z"], atol=1e-2)
    assert result["neighbours"][0]["index"] == 3 and result["neighbours"][0]["distance"] < 1e-2
    assert len(result["neighbours"]) == LIMITS.neighbours
    assert result["label"] is None
    assert result["score"] == pytest.approx(items[3]["score"], rel=0.05)
    assert result["flagged"] == (result["score"] > result["threshold"])


def test_upload_of_any_size_and_colour_is_read_at_the_model_size(image_client, upload_png) -> None:
    """The 40x40 ring and an RGB picture are both resized to 8x8 grey."""
    ring = upload(image_client, upload_png.read_bytes())
    assert ring.status_code == 200, ring.text
    assert pixels(ring.json()["item"]).shape == (8, 8) and len(ring.json()["z"]) == 8
    colour = Image.new("RGB", (30, 20), (200, 30, 30))
    rgb = upload(image_client, png(colour), content_type="image/png")
    assert rgb.status_code == 200, rgb.text
    assert pixels(rgb.json()["item"]).shape == (8, 8)


def test_upload_that_is_not_an_image_is_a_400(image_client) -> None:
    error = assert_error(upload(image_client, b"hello, not a picture"), 400)
    assert error.startswith("upload:")


def test_upload_with_a_wrong_content_type_is_a_415(image_client, upload_png) -> None:
    error = assert_error(upload(image_client, upload_png.read_bytes(), "text/plain", "ring.txt"), 415)
    assert "text/plain" in error


def huge_png() -> bytes:
    """A solid 2100x2000 PNG: 4.2 million pixels (over max_pixels) in a few kilobytes."""
    width, height = HUGE
    data = png(Image.new("L", (width, height), 0), optimize=True)
    assert LIMITS.max_pixels < width * height and len(data) < LIMITS.max_body_bytes // 100
    return data


def test_upload_with_too_many_pixels_is_a_400(image_client) -> None:
    assert_error(upload(image_client, huge_png()), 400)


def test_upload_with_too_many_pixels_says_so(image_client) -> None:
    """The error names the image's size and the cap, not 'not a readable image'."""
    error = assert_error(upload(image_client, huge_png()), 400)
    assert f"{HUGE[0]}x{HUGE[1]}" in error and f"{LIMITS.max_pixels:,}" in error
    assert "not a readable image" not in error


def test_upload_body_over_the_cap_is_a_413(image_client) -> None:
    """Refused by Content-Length before it is read; a body just under the cap is read (and refused
    as not an image)."""
    over = upload(image_client, b"\0" * (LIMITS.max_body_bytes + 1))
    assert f"{LIMITS.max_body_bytes:,}" in assert_error(over, 413)
    assert_error(upload(image_client, b"\0" * (LIMITS.max_body_bytes - 4096)), 400)


def test_json_body_over_the_cap_is_a_413(image_client) -> None:
    body = b'{"n": 1' + b" " * LIMITS.max_body_bytes + b"}"
    assert_error(image_client.post("/api/sample", content=body, headers={"content-type": "application/json"}), 413)


def _streamed(body: bytes, chunk: int = 64 * 1024):
    """A body with no Content-Length (chunked), so the cap must be enforced as it streams."""
    for start in range(0, len(body), chunk):
        yield body[start:start + chunk]


@pytest.mark.parametrize(("url", "content_type", "body"), [
    ("/api/sample", "application/json", b'{"n": 1' + b" " * (3 * 1024 * 1024) + b"}"),
    ("/api/reconstruct", "multipart/form-data; boundary=B",
     b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
     + b"\0" * (3 * 1024 * 1024) + b"\r\n--B--\r\n"),
], ids=["json", "upload"])
def test_streamed_body_over_the_cap_is_a_413(image_client, url, content_type, body) -> None:
    """A chunked body (no Content-Length) over the cap: BodyLimit's docstring promises a 413 "as they stream"."""
    response = image_client.post(url, content=_streamed(body), headers={"content-type": content_type})
    assert "content-length" not in response.request.headers
    assert_error(response, 413)


def test_streamed_body_under_the_cap_is_served(image_client) -> None:
    """The streaming path of the cap lets a small chunked body through."""
    response = image_client.post("/api/sample", content=_streamed(b'{"n": 2}'),
                                 headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 2


# ---------------------------------------------------------------------------- bad fields
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_latent_is_a_422(image_client, value) -> None:
    """Sent as raw JSON text: the client itself refuses to encode NaN."""
    raw = '{"z": [[' + ", ".join([value] + ["0"] * 7) + "]]}"
    response = image_client.post("/api/decode", content=raw, headers={"content-type": "application/json"})
    assert "finite" in assert_error(response, 422)


@pytest.mark.parametrize("value", [LIMITS.max_abs_latent + 0.5, -LIMITS.max_abs_latent - 0.5, 1e30])
def test_latent_beyond_the_cap_is_a_422(image_client, value) -> None:
    response = image_client.post("/api/decode", json={"z": [[value] + [0.0] * 7]})
    assert assert_error(response, 422).startswith("z.0.0:")
    endpoint = {"a": {"z": [value] + [0.0] * 7}, "b": {"index": 0}}
    assert_error(image_client.post("/api/interpolate", json=endpoint), 422)


def test_too_many_items_is_a_422(image_client) -> None:
    n = LIMITS.max_items + 1
    assert assert_error(image_client.post("/api/sample", json={"n": n}), 422).startswith("n:")
    assert_error(image_client.post("/api/decode", json={"z": [[0.0] * 8] * n}), 422)
    assert_error(image_client.post("/api/interpolate", json={"a": {"index": 0}, "b": {"index": 1}, "steps": n}), 422)
    assert image_client.post("/api/sample", json={"n": LIMITS.max_items}).status_code == 200


@pytest.mark.parametrize(("url", "body"), [
    ("/api/sample", {"n": 2, "bogus": 1}),
    ("/api/decode", {"z": [[0.0] * 8], "path": "/etc/passwd"}),
    ("/api/interpolate", {"a": {"index": 0, "extra": 1}, "b": {"index": 1}}),
    ("/api/map/decode", {"x": 0, "y": 0, "file": "run.pt"}),
])
def test_unknown_fields_are_a_422_naming_them(image_client, url, body) -> None:
    error = assert_error(image_client.post(url, json=body), 422)
    assert "Extra inputs are not permitted" in error


def test_other_bad_fields_are_422_with_one_line(image_client) -> None:
    """Wrong types, out-of-range options, a malformed body, a wrong code length (400)."""
    assert_error(image_client.post("/api/sample", json={"temperature": -1}), 422)
    assert_error(image_client.post("/api/sample", json={"temperature": 3.5}), 422)
    assert_error(image_client.post("/api/sample", json={"n": "many"}), 422)
    assert_error(image_client.post("/api/sample", json={"seed": -1}), 422)
    assert_error(image_client.post("/api/decode", json={"z": []}), 422)
    assert_error(image_client.post("/api/sample", content="{not json", headers={"content-type": "application/json"}),
                 422)
    error = assert_error(image_client.post("/api/decode", json={"z": [[0.0, 1.0, 2.0]]}), 400)
    assert "expected rows of 8 numbers" in error


def test_label_on_an_unconditional_run_is_a_400(image_client) -> None:
    for url, body in [("/api/sample", {"n": 2, "label": 3}), ("/api/decode", {"z": [[0.0] * 8], "label": "3"}),
                      ("/api/map/decode", {"x": 0, "y": 0, "label": 1})]:
        assert "not conditional" in assert_error(image_client.post(url, json=body), 400)


def test_unknown_routes_and_methods_are_json_errors(image_client) -> None:
    assert_error(image_client.get("/api/nowhere"), 404)
    assert_error(image_client.put("/api/info"), 405)
    assert_error(image_client.get("/static/../app.py"), 404)


# ---------------------------------------------------------------------------- internal errors
@pytest.fixture
def fragile_client(digits_vae, monkeypatch) -> TestClient:
    """A fresh app over the digits run whose sampling fails inside (the shared client is left alone)."""
    app = create_app(digits_vae)

    def broken(*args, **kwargs):
        raise RuntimeError('secret detail: File "/srv/vaekit/model.py", line 3')

    monkeypatch.setattr(app.state.explorer, "sample", broken)
    return TestClient(app, raise_server_exceptions=False)


def test_internal_error_is_a_500_without_a_traceback_and_is_logged(fragile_client, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="vaekit"):
        response = fragile_client.post("/api/sample", json={"n": 2})
    error = assert_error(response, 500)
    assert "secret detail" not in response.text and "RuntimeError" not in response.text
    assert "log" in error
    assert any(record.exc_info and record.exc_info[0] is RuntimeError for record in caplog.records)
    assert fragile_client.get("/api/item/0").status_code == 200  # the rest of the app still serves


def test_internal_error_carries_the_security_headers(fragile_client) -> None:
    response = fragile_client.post("/api/sample", json={"n": 2})
    assert response.status_code == 500
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value
    assert "content-security-policy" in response.headers


# ---------------------------------------------------------------------------- the conditional run
def test_conditional_run_samples_a_class_by_name_or_index(cvae_client) -> None:
    info = cvae_client.get("/api/info").json()
    assert info["conditional"] is True and info["latent_dim"] == 4
    by_name = cvae_client.post("/api/sample", json={"n": 3, "label": "3", "seed": 2}).json()
    by_index = cvae_client.post("/api/sample", json={"n": 3, "label": 3, "seed": 2}).json()
    other = cvae_client.post("/api/sample", json={"n": 3, "label": 4, "seed": 2}).json()
    assert by_name == by_index
    assert by_name != other
    assert len(cvae_client.post("/api/sample", json={"n": 3}).json()["items"]) == 3  # every class in turn


def test_conditional_run_refuses_unknown_classes_naming_them(cvae_client) -> None:
    error = assert_error(cvae_client.post("/api/sample", json={"n": 2, "label": "seven"}), 400)
    assert "'seven'" in error and "0..9" in error
    assert "10" in assert_error(cvae_client.post("/api/decode", json={"z": [[0.0] * 4], "label": 10}), 400)


def test_conditional_interpolation_decodes_under_the_first_items_label(cvae_client) -> None:
    start = cvae_client.get("/api/item/0").json()
    body = {"a": {"index": 0}, "b": {"index": 1}, "steps": 4}
    default = cvae_client.post("/api/interpolate", json=body).json()
    labelled = cvae_client.post("/api/interpolate", json={**body, "label": start["label"]}).json()
    assert default == labelled
    others = [c for c in map(str, range(10)) if c != start["label"]]
    assert cvae_client.post("/api/interpolate", json={**body, "label": others[0]}).json() != default


def test_conditional_run_refuses_uploads(cvae_client, upload_png) -> None:
    assert "conditional" in assert_error(upload(cvae_client, upload_png.read_bytes()), 400)


# ---------------------------------------------------------------------------- the table run
def test_table_items_are_rows_with_text_and_empty_cells(table_client, table_run) -> None:
    """Rows by column name; "strong" is the text of the CSV ("yes"/"no") or None where it was empty,
    and so is every other empty cell."""
    info = table_client.get("/api/info").json()
    assert info["kind"] == "table" and info["uploads"] is False
    assert info["classes"] == ["class_0", "class_1", "class_2"]
    inputs = table_run.inputs()
    names = table_run.spec.feature_names
    strong = names.index("strong")
    empty_strong = 0
    for index in range(info["inputs"]):
        answer = table_client.get(f"/api/item/{index}").json()
        row = answer["item"]["row"]
        assert list(row) == names
        cell = inputs.x[index, strong]
        if isinstance(cell, str):
            assert row["strong"] == cell and cell in ("yes", "no")
        else:
            assert row["strong"] is None
            empty_strong += 1
        for name, value in zip(names, inputs.x[index], strict=True):
            if not isinstance(value, str) and value != value:  # an empty numeric cell
                assert row[name] is None
        assert answer["reconstruction"]["row"]["strong"] in ("yes", "no")
        assert answer["label"] == info["classes"][int(inputs.y[index])]
        assert all("row" in neighbour for neighbour in answer["neighbours"])
    assert empty_strong >= 1  # the fixture empties about 10% of cells


def test_table_samples_are_complete_rows(table_client, table_run) -> None:
    rows = [item["row"] for item in table_client.post("/api/sample", json={"n": 20}).json()["items"]]
    assert len(rows) == 20
    assert {row["strong"] for row in rows} <= {"yes", "no"}
    assert all(list(row) == table_run.spec.feature_names for row in rows)
    assert all(isinstance(v, float) for row in rows for k, v in row.items() if k != "strong")


def test_table_map_and_interpolation(table_client) -> None:
    info = table_client.get("/api/info").json()
    latent_map = table_client.get("/api/map").json()
    assert len(latent_map["points"]) == info["inputs"] and len(latent_map["labels"]) == info["inputs"]
    path = table_client.post("/api/interpolate", json={"a": {"index": 0}, "b": {"index": 1}, "steps": 3}).json()
    assert len(path["items"]) == 3 and all("row" in item for item in path["items"])


def test_upload_to_a_table_run_is_a_400(table_client, upload_png) -> None:
    assert "table" in assert_error(upload(table_client, upload_png.read_bytes()), 400)


# ---------------------------------------------------------------------------- schema, page, headers
def test_openapi_schema_lists_every_api_route_and_its_caps(image_client) -> None:
    schema = image_client.get("/api/openapi.json").json()
    assert sorted(schema["paths"]) == API_PATHS
    sample = schema["components"]["schemas"]["SampleRequest"]
    assert sample["additionalProperties"] is False
    assert sample["properties"]["n"]["maximum"] == LIMITS.max_items


def test_page_uses_only_same_origin_scripts_and_styles(image_client) -> None:
    """The page and everything it links are served from this server; no http(s):// URL in it."""
    page = image_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert not re.search(r"https?://", page.text, re.IGNORECASE)
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    local = [url for url in linked if not url.startswith("data:")]
    assert "/static/explorer.js" in local and "/static/explorer.css" in local
    for url in local:
        assert url.startswith("/"), url
        assert image_client.get(url).status_code == 200, url


@pytest.mark.parametrize("url", ["/", "/api/info", "/static/explorer.js", "/api/nowhere"])
def test_responses_carry_the_security_headers(image_client, url) -> None:
    response = image_client.get(url)
    for name, value in SECURITY.items():
        assert response.headers[name] == value
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_refused_bodies_carry_the_security_headers(image_client) -> None:
    too_large = upload(image_client, b"\0" * (LIMITS.max_body_bytes + 1))
    invalid = image_client.post("/api/sample", json={"n": 0})
    for response in (too_large, invalid):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in response.headers


def test_api_only_serves_the_api_without_the_page(digits_vae) -> None:
    client = TestClient(create_app(digits_vae, api_only=True))
    assert client.get("/api/info").status_code == 200
    assert_error(client.get("/"), 404)
    assert_error(client.get("/static/explorer.js"), 404)


# ---------------------------------------------------------------------------- review fixes
def test_rows_of_different_lengths_are_a_400_not_a_500(image_client, info) -> None:
    width = info["latent_dim"]
    error = assert_error(image_client.post("/api/decode", json={"z": [[0.0] * width, [0.0] * (width - 1)]}), 400)
    assert f"expected rows of {width} numbers" in error


def test_a_flood_of_invalid_values_answers_with_the_first_few(image_client) -> None:
    response = image_client.post("/api/decode", json={"z": [["x"] * 4096] * 8})
    assert_error(response, 422)
    body = response.json()
    assert body["errors"] == 8 * 4096 and len(body["detail"]) == 10
    assert "(and 32767 more)" in body["error"]


def test_only_the_five_image_formats_are_read_whatever_the_declared_type(image_client) -> None:
    tiff = io.BytesIO()
    Image.new("L", (8, 8), 128).save(tiff, format="TIFF")
    assert "not a readable image" in assert_error(upload(image_client, tiff.getvalue()), 400)
    generic = upload(image_client, png(Image.new("L", (8, 8), 0)), content_type="application/octet-stream")
    assert generic.status_code == 200, generic.text


def test_a_conditional_run_decodes_only_under_a_class(cvae_client, cvae_run) -> None:
    """No class to decode a code under is refused (it used to cycle through the classes row by row);
    a path from a held-out item takes that item's class."""
    width = cvae_run.model.latent_dim
    assert "give the class" in assert_error(cvae_client.post("/api/decode", json={"z": [[0.0] * width]}), 400)
    assert cvae_client.post("/api/decode", json={"z": [[0.0] * width], "label": 2}).status_code == 200
    ends = {"a": {"z": [0.0] * width}, "b": {"index": 1}, "steps": 3}
    assert_error(cvae_client.post("/api/interpolate", json=ends), 400)
    assert cvae_client.post("/api/interpolate", json={**ends, "label": "7"}).status_code == 200
    from_item = cvae_client.post("/api/interpolate", json={"a": {"index": 0}, "b": {"z": [0.0] * width}, "steps": 3})
    assert from_item.status_code == 200
    assert_error(cvae_client.post("/api/map/decode", json={"x": 0.0, "y": 0.0}), 400)
    info = cvae_client.get("/api/info").json()
    assert info["uploads"] is False  # the page hides the upload and the drawing pad


def test_hovering_needs_only_the_input(image_client) -> None:
    item, alone = image_client.get("/api/item/4").json(), image_client.get("/api/input/4").json()
    assert alone == {"index": 4, "item": item["item"], "label": item["label"], "label_index": item["label_index"]}
    assert_error(image_client.get("/api/input/100000"), 400)


def test_a_large_input_set_is_sampled_across_it_not_cut_at_the_front(digits_vae) -> None:
    """Files sorted by class keep every class on the map when there are more inputs than map points."""
    from vaekit.web.explorer import Explorer, Limits

    inputs = digits_vae.inputs()
    order = np.argsort(inputs.y, kind="stable")
    by_class = inputs.subset(order)
    explorer = Explorer(digits_vae, by_class, Limits(map_points=60))
    assert len(explorer.inputs) == 60 and set(explorer.inputs.y.tolist()) == set(range(10))


def test_labels_from_other_data_are_matched_to_the_runs_classes_by_name(cvae_run) -> None:
    from vaekit.data.sources import RawData
    from vaekit.errors import DataError
    from vaekit.web.explorer import Explorer

    held = cvae_run.inputs()
    names = cvae_run.spec.class_names
    keep = held.y >= 5  # another file that holds only the digits 5-9, numbered 0-4 there
    other = RawData(x=held.x[keep], y=held.y[keep] - 5, kind="image", max_level=held.max_level,
                    class_names=names[5:])
    explorer = Explorer(cvae_run, other)
    assert explorer.class_names == names
    np.testing.assert_array_equal(explorer.inputs.y, held.y[keep][: len(explorer.inputs)])
    stranger = RawData(x=held.x[:5], y=np.zeros(5, dtype=np.int64), kind="image", max_level=held.max_level,
                       class_names=["eleven"])
    with pytest.raises(DataError, match="eleven"):
        Explorer(cvae_run, stranger)


def test_a_slow_model_call_does_not_hold_the_other_requests(digits_vae) -> None:
    """Model work runs in a worker thread: while one item is being analysed, the server still answers
    (the schema, a hover) instead of waiting for it."""
    import threading

    from vaekit.web import create_app

    app = create_app(digits_vae)
    explorer = app.state.explorer
    release, entered = threading.Event(), threading.Event()
    analyse = explorer.item

    def slow_item(index):
        entered.set()
        release.wait(60)
        return analyse(index)

    explorer.item = slow_item
    with TestClient(app) as client:
        answers = []
        worker = threading.Thread(target=lambda: answers.append(client.get("/api/item/3")))
        worker.start()
        assert entered.wait(30)
        try:
            assert client.get("/api/openapi.json").status_code == 200  # answered while the item waits
            assert client.get("/api/input/5").status_code == 200
            assert worker.is_alive() and not answers
        finally:
            release.set()
            worker.join(60)
    assert answers and answers[0].status_code == 200


# ---------------------------------------------------------------------------- text and molecules
def test_a_text_run_serves_strings(text_client, text_run) -> None:
    info = text_client.get("/api/info").json()
    assert info["kind"] == "sequence" and info["uploads"] is False
    assert info["threshold"]["score"] == "elbo"  # token ids have no reconstruction error
    vocabulary = set(text_run.spec.vocabulary.tokens)
    items = text_client.post("/api/sample", json={"n": 6, "seed": 1}).json()["items"]
    assert len(items) == 6 and all(set(item["text"].split()) <= vocabulary for item in items)
    item = text_client.get("/api/item/0").json()
    assert item["item"]["text"] == text_run.inputs().x[0]
    assert isinstance(item["reconstruction"]["text"], str) and item["flagged"] == (item["score"] > item["threshold"])
    path = text_client.post("/api/interpolate", json={"a": {"index": 0}, "b": {"index": 1}, "steps": 4}).json()
    assert len(path["items"]) == 4 and all("text" in step for step in path["items"])
    decoded = text_client.post("/api/decode", json={"z": [[0.0] * info["latent_dim"]]}).json()["items"][0]
    assert "text" in decoded
    assert "uploads are images" in assert_error(upload(text_client, png(Image.new("L", (8, 8)))), 400)


def test_a_molecule_run_draws_valid_molecules(smiles_client, smiles_run) -> None:
    pytest.importorskip("rdkit", reason="molecules are drawn by RDKit (the chem extra)")
    from rdkit import Chem

    item = smiles_client.get("/api/item/0").json()["item"]
    assert Chem.MolFromSmiles(item["text"]) is not None
    assert item["svg"].startswith("data:image/svg+xml;base64,")
    assert b"<svg" in base64.b64decode(item["svg"].split(",", 1)[1])
    for sample in smiles_client.post("/api/sample", json={"n": 16}).json()["items"]:
        valid = Chem.MolFromSmiles(sample["text"]) is not None if sample["text"] else False
        assert ("svg" in sample) == valid  # drawn exactly when it is a molecule
