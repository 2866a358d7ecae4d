"""The web page at `/` of `platereader serve`: choose or drop a photo, see its plates on it.

One self-contained HTML document (inline CSS and JavaScript, no CDN, no build step), kept here as a
string so that it ships inside the Python package like the rest of the code. The page posts the
file as the multipart field `file` to `predict` (relative, so it also works behind a path
prefix), draws each plate's quad with its text and confidence on a canvas over the photo, and
lists the plates below it. Errors are the server's own {"error": ...} sentence.

The photo is drawn as the browser decodes it, with EXIF orientation applied, which is how the
server decodes it too (platereader.images.load_image), so the corners land on the plate. A format
the browser cannot show (TIFF in most browsers) still gets its plates listed, without a picture.

The functions are globals (`readFile`, `show`, `draw`) so that tests can drive the page.
"""

# Sent with the page: it may run only its own inline script and style, show only the local photo
# (blob:) and talk only to the server it came from. A page that needed anything from the internet
# would break here, in every browser, instead of going unnoticed.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'")

STROKE = "#ff00c8"  # the quads and labels: a magenta that stands out on roads, cars and sky

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Swiss plate reader</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d1d1f; background: #f5f5f7; }
  body { margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem 3rem; }
  header { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; }
  h1 { font-size: 1.5rem; margin: 0.5rem 0 1rem; }
  a { color: #0057b8; }
  #drop { display: block; border: 2px dashed #8e8e93; border-radius: 12px; padding: 2rem 1rem;
          text-align: center; background: #fff; cursor: pointer; }
  #drop:hover, #drop:focus-within, #drop.over { border-color: __STROKE__; background: #fff5fc; }
  #drop strong { color: #0057b8; text-decoration: underline; }
  #drop small { display: block; color: #6e6e73; margin-top: 0.5rem; }
  #file { position: absolute; width: 1px; height: 1px; opacity: 0; }
  #status { min-height: 1.5em; margin: 1rem 0; }
  #status.error { color: #b00020; font-weight: 600; }
  figure { margin: 0; }
  canvas { max-width: 100%; height: auto; border-radius: 8px; box-shadow: 0 1px 4px #0003; }
  #plates { padding-left: 1.5rem; font-size: 1.1rem; }
  #plates li { margin: 0.3rem 0; }
  .text { font-weight: 700; font-family: ui-monospace, monospace; font-size: 1.25rem; }
  .format, .confidence { color: #6e6e73; margin-left: 0.75rem; }
  pre { background: #fff; padding: 0.75rem; border-radius: 8px; overflow: auto; }
</style>
</head>
<body data-state="idle">
<header>
  <h1>Swiss plate reader</h1>
  <a href="docs">API documentation</a>
</header>
<label id="drop" for="file">
  <input id="file" type="file" accept="image/*,.tif,.tiff">
  <strong>Choose a photo</strong> or drop it anywhere on this page
  <small>JPEG, PNG, WebP, BMP, GIF or TIFF; up to 50 megapixels</small>
</label>
<p id="status" role="status" aria-live="polite"></p>
<figure id="figure" hidden><canvas id="canvas" aria-label="the photo with its plates outlined"></canvas></figure>
<ol id="plates"></ol>
<details id="raw" hidden><summary>The JSON answer</summary><pre id="json"></pre></details>
<script>
"use strict";
const STROKE = "__STROKE__";
const $ = (id) => document.getElementById(id);
let current = 0;  // the latest file: an older answer arriving late is dropped

function setState(state, message) {
  document.body.dataset.state = state;  // idle | reading | done | error (tests wait on it)
  $("status").textContent = message;
  $("status").className = state;
}

function percent(confidence) {
  return (100 * confidence).toFixed(1) + " %";
}

async function decode(file) {
  // The photo upright (EXIF orientation applied, as the server reads it); null if the browser
  // cannot decode the format.
  try {
    return await createImageBitmap(file, {imageOrientation: "from-image"});
  } catch (error) {
    try {
      return await createImageBitmap(file);  // a browser without that option
    } catch (error) {
      return null;
    }
  }
}

async function readFile(file) {
  if (!file) return;
  const token = ++current;
  setState("reading", "Reading " + file.name + "\\u2026");
  const body = new FormData();
  body.append("file", file, file.name || "photo");
  let response, text;
  try {
    response = await fetch("predict", {method: "POST", body: body});
    text = await response.text();
  } catch (error) {
    if (token === current) setState("error", "No answer from the server: " + error.message);
    return;
  }
  let answer = null;
  try { answer = JSON.parse(text); } catch (error) { /* not JSON: said below */ }
  const image = response.ok ? await decode(file) : null;
  if (token !== current) return;
  if (!response.ok || answer === null) {
    const reason = answer && answer.error ? answer.error : "HTTP " + response.status + " " + text.slice(0, 200);
    setState("error", "The server could not read " + file.name + ": " + reason);
    return;
  }
  show(answer, image, file.name);
}

function show(answer, image, name) {
  const plates = answer.plates || [];
  $("figure").hidden = !image;
  if (image) draw($("canvas"), image, plates);
  const list = $("plates");
  list.replaceChildren(...plates.map((plate) => {
    const item = document.createElement("li");
    item.className = "plate";
    for (const [cls, value] of [["text", plate.plate || plate.text], ["format", plate.format],
                                ["confidence", percent(plate.confidence)]]) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = value;
      item.append(span);
    }
    return item;
  }));
  $("json").textContent = JSON.stringify(answer, null, 2);
  $("raw").hidden = false;
  let message = plates.length === 0 ? "No plate found in " + name + "."
    : (plates.length === 1 ? "1 plate" : plates.length + " plates") + " in " + name + ":";
  if (!image) message += " (this browser cannot show the photo itself)";
  setState("done", message);
}

function draw(canvas, image, plates) {
  // The photo at its own size (CSS scales it down), each plate's label, then every quad on top:
  // a label never hides an edge.
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const side = Math.max(image.width, image.height);
  const line = Math.max(3, Math.round(side / 300));
  const size = Math.max(12, Math.round(side / 30));
  const pad = Math.round(size / 4);
  ctx.font = "bold " + size + "px system-ui, sans-serif";
  ctx.textBaseline = "top";
  for (const plate of plates) {
    const text = (plate.plate || plate.text) + "  " + percent(plate.confidence);
    const xs = plate.corners.map((c) => c[0]), ys = plate.corners.map((c) => c[1]);
    const w = ctx.measureText(text).width + 2 * pad, h = size + 2 * pad;
    const x = Math.min(Math.max(Math.min(...xs), 0), Math.max(canvas.width - w, 0));
    let y = Math.min(...ys) - h - line;  // above the plate, else below it, else inside the photo
    if (y < 0) y = Math.max(...ys) + line;
    if (y + h > canvas.height) y = Math.min(Math.max(Math.min(...ys), 0), Math.max(canvas.height - h, 0));
    ctx.fillStyle = STROKE;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x + pad, y + pad);
  }
  ctx.strokeStyle = STROKE;
  ctx.lineWidth = line;
  ctx.lineJoin = ctx.lineCap = "round";
  for (const plate of plates) {
    ctx.beginPath();
    plate.corners.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.stroke();
  }
}

$("file").addEventListener("change", (event) => {
  readFile(event.target.files[0]);
  event.target.value = "";  // choosing the same file again reads it again
});
// Drop anywhere: without this, a file dropped beside the box would replace the page.
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => { event.preventDefault(); $("drop").classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, (event) => { event.preventDefault(); $("drop").classList.remove("over"); });
}
document.addEventListener("drop", (event) => readFile(event.dataTransfer.files[0]));
</script>
</body>
</html>
""".replace("__STROKE__", STROKE)
