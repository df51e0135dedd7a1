// LeNet Serve page: draw or upload a digit, show what the model answered and saw, explain the model,
// and let an admin retrain it. Plain JavaScript, no build step; every request goes to this server.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const integer = new Intl.NumberFormat("en-US");
  const percent = (x, digits = 2) => `${(x * 100).toFixed(digits)}%`;
  const PREDICT_DELAY_MS = 300; // after the last pointer move or lift
  const LINE_WIDTH = 20; // on the 280x280 pad: about the stroke width of an MNIST digit once scaled
  const TERMINAL = new Set(["succeeded", "failed", "rejected", "cancelled"]);
  const FALLBACK_ARCHS = ["lenet5", "lenet5-sigmoid", "lenet5-compact", "lenet5-wide", "cnn-dropout", "lenet5-plus"];

  const page = {
    model: null, // the model name predictions use (null: the server's default)
    defaultModel: null,
    models: [],
    input: null, // what the last prediction was made from: "pad" or a File
    sequence: 0, // only the answer to the latest request is shown
    inFlight: null, // AbortController of the pending /predict
    adminToken: "", // only here, for this page's lifetime; never stored
    job: null, // {id, controller} of the training job being followed
    noDigitReasons: {}, // reason code -> what it means, from the server's OpenAPI document
  };

  // ----- errors -----

  class ApiError extends Error {
    constructor(status, body) {
      const error = body && body.error;
      super(error ? `${error.message} (${error.code}, HTTP ${status})` : `The server answered HTTP ${status}.`);
      this.status = status;
      this.code = error ? error.code : null;
      this.details = error || {};
    }
  }

  async function requestJson(url, options = {}) {
    const response = await fetch(url, options);
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      if (error.name === "AbortError") throw error;
      body = null; // not JSON: reported from the status below
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  function describe(error) {
    if (error instanceof ApiError) return error.message;
    return `Could not reach the server (${error.message}).`;
  }

  function showAlert(element, message) {
    element.textContent = message;
    element.hidden = !message;
  }

  // ----- drawing pad -----

  const pad = $("pad");
  const ink = pad.getContext("2d");
  const strokes = []; // each stroke: [[x, y], ...] in pad pixels
  let stroke = null;
  let predictTimer = null;

  function paint() {
    ink.fillStyle = "#000";
    ink.fillRect(0, 0, pad.width, pad.height);
    ink.strokeStyle = "#fff";
    ink.fillStyle = "#fff";
    ink.lineWidth = LINE_WIDTH;
    ink.lineCap = "round";
    ink.lineJoin = "round";
    for (const points of strokes) {
      if (points.length === 1) {
        ink.beginPath();
        ink.arc(points[0][0], points[0][1], LINE_WIDTH / 2, 0, 2 * Math.PI);
        ink.fill();
        continue;
      }
      ink.beginPath();
      ink.moveTo(points[0][0], points[0][1]);
      for (const [x, y] of points.slice(1)) ink.lineTo(x, y);
      ink.stroke();
    }
  }

  function padPoint(event) {
    const box = pad.getBoundingClientRect();
    const x = (event.clientX - box.left) * (pad.width / box.width);
    return [x, (event.clientY - box.top) * (pad.height / box.height)];
  }

  pad.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    if (page.input instanceof File) $("upload").value = "";
    page.input = "pad";
    stroke = [padPoint(event)];
    strokes.push(stroke);
    paint();
    clearTimeout(predictTimer);
  });

  pad.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of coalesced.length ? coalesced : [event]) stroke.push(padPoint(each));
    paint();
    schedulePrediction();
  });

  function endStroke() {
    if (!stroke) return;
    stroke = null;
    schedulePrediction();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("contextmenu", (event) => event.preventDefault()); // long-press on touch screens

  function schedulePrediction() {
    clearTimeout(predictTimer);
    predictTimer = setTimeout(predictPad, PREDICT_DELAY_MS);
  }

  function predictPad() {
    if (!strokes.length) {
      resetResult();
      return;
    }
    page.input = "pad";
    pad.toBlob((blob) => {
      if (blob) predict(blob, "drawing.png");
    }, "image/png");
  }

  $("undo").addEventListener("click", () => {
    if (!strokes.length) return;
    strokes.pop();
    stroke = null;
    paint();
    clearTimeout(predictTimer);
    predictPad();
  });

  $("clear").addEventListener("click", () => {
    strokes.length = 0;
    stroke = null;
    paint();
    clearTimeout(predictTimer);
    $("upload").value = "";
    page.input = null;
    resetResult();
  });

  $("upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    strokes.length = 0; // the upload replaces the drawing
    paint();
    clearTimeout(predictTimer);
    page.input = file;
    predict(file, file.name);
  });

  function predictAgain() {
    if (page.input instanceof File) predict(page.input, page.input.name);
    else if (page.input === "pad") predictPad();
  }

  // ----- prediction -----

  const probabilityRows = [];

  function buildProbabilities() {
    const list = $("probabilities");
    for (let digit = 0; digit < 10; digit += 1) {
      const item = document.createElement("li");
      item.innerHTML =
        `<span class="probability-digit" aria-hidden="true">${digit}</span>` +
        `<span class="bar" role="meter" aria-label="Probability of ${digit}" aria-valuemin="0" aria-valuemax="100"` +
        ` aria-valuenow="0"><span class="bar-fill"></span></span>` +
        `<span class="probability-value" aria-hidden="true">0.0%</span>`;
      list.append(item);
      probabilityRows.push({
        item,
        bar: item.querySelector(".bar"),
        fill: item.querySelector(".bar-fill"),
        value: item.querySelector(".probability-value"),
      });
    }
  }

  async function predict(blob, filename) {
    const sequence = ++page.sequence;
    if (page.inFlight) page.inFlight.abort();
    const controller = new AbortController();
    page.inFlight = controller;
    const form = new FormData();
    form.append("image", blob, filename);
    const query = new URLSearchParams({ return_image: "true" });
    if (page.model) query.set("model", page.model);
    $("result-panel").setAttribute("aria-busy", "true");
    try {
      const body = await requestJson(`/predict?${query}`, { method: "POST", body: form, signal: controller.signal });
      if (sequence !== page.sequence) return;
      showAlert($("predict-error"), "");
      showPrediction(body);
    } catch (error) {
      if (error.name === "AbortError" || sequence !== page.sequence) return;
      showAlert($("predict-error"), `Could not recognise the image: ${describe(error)}`);
      $("result").dataset.state = "error";
      $("result").hidden = true; // the last answer is not this image's
      $("quick-answer").textContent = "";
    } finally {
      if (sequence === page.sequence) {
        $("result-panel").removeAttribute("aria-busy");
        page.inFlight = null;
      }
    }
  }

  function showPrediction(body) {
    const prediction = body.predictions[0];
    const found = prediction.digit !== null;
    $("answer-found").hidden = !found;
    $("answer-details").hidden = !found;
    $("no-digit").hidden = found;
    $("result-empty").hidden = true;
    $("result").hidden = false;
    $("result").dataset.state = "done";
    if (!found) {
      showNoDigit(prediction.reason);
      return;
    }
    $("digit").textContent = String(prediction.digit);
    $("confidence").textContent = percent(prediction.confidence, 1);
    $("served-by").textContent = `${body.model.name} v${body.model.version}`;
    if (prediction.image) $("seen").src = `data:image/png;base64,${prediction.image}`;
    prediction.probabilities.forEach((probability, digit) => {
      const row = probabilityRows[digit];
      const shown = percent(probability, 1);
      row.fill.style.width = `${Math.max(0, Math.min(1, probability)) * 100}%`;
      row.value.textContent = shown;
      row.bar.setAttribute("aria-valuenow", (probability * 100).toFixed(1));
      row.bar.setAttribute("aria-valuetext", shown);
      row.item.classList.toggle("top", digit === prediction.digit);
    });
    $("quick-answer").textContent = `${prediction.digit} (${percent(prediction.confidence, 0)})`;
  }

  function showNoDigit(reason) {
    const meaning = page.noDigitReasons[reason];
    $("no-digit-reason").textContent = meaning
      ? `${meaning.charAt(0).toUpperCase()}${meaning.slice(1)}.` : `The server's reason: ${reason}.`;
    $("digit").textContent = "?";
    $("quick-answer").textContent = "no digit";
  }

  function resetResult() {
    page.sequence += 1; // drop any answer still on its way
    if (page.inFlight) page.inFlight.abort();
    page.inFlight = null;
    $("result-panel").removeAttribute("aria-busy");
    showAlert($("predict-error"), "");
    $("result").hidden = true;
    $("result").dataset.state = "empty";
    $("result-empty").hidden = false;
    $("digit").textContent = "?";
    $("quick-answer").textContent = "";
  }

  // ----- write a number (POST /read) -----

  const NUMBER_LINE_WIDTH = 14; // on the 840x240 pad: digits about 150 pixels tall
  const numberPad = $("number-pad");
  const numberInk = numberPad.getContext("2d");
  const numberStrokes = [];
  const reading = { stroke: null, timer: null, sequence: 0, controller: null, picture: null };

  function paintNumber(digits = []) {
    numberInk.fillStyle = "#000";
    numberInk.fillRect(0, 0, numberPad.width, numberPad.height);
    let scale = 1;
    if (reading.picture) { // an upload, fitted into the pad; its boxes are in its own pixels
      const picture = reading.picture;
      scale = Math.min(numberPad.width / picture.width, numberPad.height / picture.height);
      numberInk.fillStyle = "#fff";
      numberInk.fillRect(0, 0, picture.width * scale, picture.height * scale);
      numberInk.drawImage(picture, 0, 0, picture.width * scale, picture.height * scale);
    }
    numberInk.strokeStyle = "#fff";
    numberInk.fillStyle = "#fff";
    numberInk.lineWidth = NUMBER_LINE_WIDTH;
    numberInk.lineCap = "round";
    numberInk.lineJoin = "round";
    for (const points of numberStrokes) {
      numberInk.beginPath();
      numberInk.moveTo(points[0][0], points[0][1]);
      for (const [x, y] of points.slice(1)) numberInk.lineTo(x, y);
      if (points.length === 1) numberInk.lineTo(points[0][0] + 0.1, points[0][1]);
      numberInk.stroke();
    }
    numberInk.lineWidth = 2;
    numberInk.font = "bold 18px sans-serif";
    for (const digit of digits) {
      const [x, y, w, h] = digit.box.map((v) => v * scale);
      numberInk.strokeStyle = "#f5a623";
      numberInk.fillStyle = "#f5a623";
      numberInk.strokeRect(x, y, w, h);
      numberInk.fillText(String(digit.digit), x + 2, Math.max(16, y - 4));
    }
  }

  function numberPoint(event) {
    const box = numberPad.getBoundingClientRect();
    return [(event.clientX - box.left) * (numberPad.width / box.width),
      (event.clientY - box.top) * (numberPad.height / box.height)];
  }

  numberPad.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    numberPad.setPointerCapture(event.pointerId);
    if (reading.picture) {
      reading.picture = null;
      $("number-upload").value = "";
    }
    reading.stroke = [numberPoint(event)];
    numberStrokes.push(reading.stroke);
    paintNumber();
    clearTimeout(reading.timer);
  });
  numberPad.addEventListener("pointermove", (event) => {
    if (!reading.stroke) return;
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of coalesced.length ? coalesced : [event]) reading.stroke.push(numberPoint(each));
    paintNumber();
  });
  function endNumberStroke() {
    if (!reading.stroke) return;
    reading.stroke = null;
    clearTimeout(reading.timer);
    reading.timer = setTimeout(readPad, PREDICT_DELAY_MS);
  }
  numberPad.addEventListener("pointerup", endNumberStroke);
  numberPad.addEventListener("pointercancel", endNumberStroke);
  numberPad.addEventListener("contextmenu", (event) => event.preventDefault());

  function readPad() {
    if (!numberStrokes.length) {
      resetReading();
      return;
    }
    numberPad.toBlob((blob) => {
      if (blob) readNumber(blob, "number.png");
    }, "image/png");
  }

  $("number-undo").addEventListener("click", () => {
    numberStrokes.pop();
    paintNumber();
    readPad();
  });
  $("number-clear").addEventListener("click", () => {
    numberStrokes.length = 0;
    reading.picture = null;
    $("number-upload").value = "";
    paintNumber();
    resetReading();
  });
  $("number-upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    numberStrokes.length = 0;
    const picture = new Image();
    picture.onload = () => {
      reading.picture = picture;
      paintNumber();
      readNumber(file, file.name);
    };
    picture.onerror = () => { // not an image the browser shows: the last picture and its boxes go; the server says why
      reading.picture = null;
      paintNumber();
      readNumber(file, file.name);
    };
    picture.src = URL.createObjectURL(file);
  });

  async function readNumber(blob, filename) {
    const sequence = ++reading.sequence;
    if (reading.controller) reading.controller.abort();
    const controller = new AbortController();
    reading.controller = controller;
    const form = new FormData();
    form.append("image", blob, filename);
    $("number-panel").setAttribute("aria-busy", "true");
    try {
      // No model named: the server's reading model reads (LENET_READ_MODEL), trained to doubt wrong cuts.
      const body = await requestJson("/read", { method: "POST", body: form, signal: controller.signal });
      if (sequence !== reading.sequence) return;
      showAlert($("read-error"), "");
      showReading(body.readings[0], body.model);
    } catch (error) {
      if (error.name === "AbortError" || sequence !== reading.sequence) return;
      showAlert($("read-error"), `Could not read the image: ${describe(error)}`);
      $("number-panel").dataset.state = "error";
      $("number-found").hidden = true; // the last reading is not this image's
      $("number-none").hidden = true;
      $("number-digits").replaceChildren();
    } finally {
      if (sequence === reading.sequence) {
        $("number-panel").removeAttribute("aria-busy");
        reading.controller = null;
      }
    }
  }

  function showReading(result, model) {
    const found = result.text !== "";
    $("read-by").textContent = `${model.name} v${model.version}`;
    $("number-empty").hidden = true;
    $("number-found").hidden = !found;
    $("number-none").hidden = found;
    $("number-panel").dataset.state = "done";
    $("number-text").textContent = result.text;
    $("number-confidence").textContent = found ? `(${percent(result.confidence, 1)} sure)` : "";
    const meaning = page.noDigitReasons[result.reason];
    $("number-reason").textContent = found ? "" : meaning || result.reason || "";
    const list = $("number-digits");
    list.replaceChildren(...result.digits.map((digit) => {
      const item = document.createElement("li");
      item.textContent = `${digit.digit}: ${percent(digit.confidence, 1)}`;
      return item;
    }));
    paintNumber(result.digits);
  }

  function resetReading() {
    reading.sequence += 1;
    if (reading.controller) reading.controller.abort();
    reading.controller = null;
    $("number-panel").removeAttribute("aria-busy");
    $("number-panel").dataset.state = "empty";
    showAlert($("read-error"), "");
    $("number-empty").hidden = false;
    $("number-found").hidden = true;
    $("number-none").hidden = true;
    $("number-digits").replaceChildren();
  }

  // ----- the model panel -----

  const figureUrl = (name, version, figure) =>
    `/models/${encodeURIComponent(name)}/versions/${version}/report/${figure}`;

  async function loadModels() {
    try {
      const body = await requestJson("/models");
      page.models = body.models;
      const preferred = body.models.find((m) => m.name === page.model) || body.models.find((m) => m.default);
      page.defaultModel = (body.models.find((m) => m.default) || {}).name || null;
      if (page.defaultModel) $("train-model").textContent = page.defaultModel;
      const select = $("model-select");
      select.replaceChildren(
        ...body.models.map((m) => {
          const option = document.createElement("option");
          option.value = m.name;
          option.textContent = m.name + (m.default ? " (default)" : "");
          return option;
        }),
      );
      select.disabled = !body.models.length;
      if (!preferred) {
        showAlert($("model-error"), "The server has no models.");
        return;
      }
      select.value = preferred.name;
      page.model = preferred.name;
      await showModel(preferred.name);
    } catch (error) {
      showAlert($("model-error"), `Could not list the models: ${describe(error)}`);
    }
  }

  async function showModel(name, version = null) {
    const model = page.models.find((m) => m.name === name);
    if (!model) return;
    const chosen = version ?? model.serving_version ?? Math.max(...model.versions.map((v) => v.version));
    renderVersions(model, chosen);
    if (!Number.isFinite(chosen)) {
      showAlert($("model-error"), `Model ${name} has no versions.`);
      return;
    }
    try {
      const meta = await requestJson(`/models/${encodeURIComponent(name)}/versions/${chosen}`);
      showAlert($("model-error"), "");
      renderMetadata(model, meta);
    } catch (error) {
      showAlert($("model-error"), `Could not read ${name} version ${chosen}: ${describe(error)}`);
    }
  }

  function renderMetadata(model, meta) {
    $("model-name").textContent = meta.name;
    $("model-version").textContent = String(meta.version);
    $("model-serving").hidden = meta.version !== model.serving_version;
    $("model-accuracy").textContent = typeof meta.test_accuracy === "number"
      ? `${percent(meta.test_accuracy)} of ${integer.format(meta.test_size || 10000)} test digits` : "not measured";
    $("model-parameters").textContent =
      typeof meta.parameters === "number" ? integer.format(meta.parameters) : "unknown";
    $("model-architecture").textContent = meta.architecture || "unknown";
    const training = [];
    if (meta.epochs_run) training.push(`${meta.epochs_run} epochs`);
    if (meta.train_size) training.push(`on ${integer.format(meta.train_size)} digits`);
    if (meta.training_seconds) training.push(`in ${Math.round(meta.training_seconds)} s`);
    if (meta.created) training.push(`created ${meta.created.replace("T", " ").replace(/\+00:00$/, " UTC")}`);
    $("model-training").textContent = training.join(", ") || "unknown";

    const rows = (meta.layers || []).map((layer) => {
      const row = document.createElement("tr");
      const shape = (layer.output_shape || []).filter((d) => d !== null).join("x");
      const why = String(layer.formula || "").replace(/\s*=\s*[\d,]+\s*$/, ""); // the count has its own column
      const name = document.createElement("th");
      name.scope = "row";
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = layer.kind;
      name.append(layer.name, kind);
      row.append(name);
      for (const [text, className] of [[shape, ""], [integer.format(layer.params || 0), "num"], [why, "formula"]]) {
        const cell = document.createElement("td");
        if (className) cell.className = className;
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    });
    $("layers").tBodies[0].replaceChildren(...rows);
    const total = (meta.layers || []).reduce((sum, layer) => sum + (layer.params || 0), 0);
    $("layers-total").textContent = integer.format(meta.layers && meta.layers.length ? total : meta.parameters || 0);

    for (const [id, figure] of [["fig-curves", "learning_curves.png"], ["fig-confusion", "confusion_matrix.png"]]) {
      const image = $(id);
      image.closest("figure").classList.remove("missing");
      image.src = figureUrl(meta.name, meta.version, figure);
    }
    $("fig-samples").href = figureUrl(meta.name, meta.version, "samples.png");
    $("fig-misclassified").href = figureUrl(meta.name, meta.version, "misclassified.png");
  }

  for (const id of ["fig-curves", "fig-confusion"]) {
    $(id).addEventListener("error", (event) => event.target.closest("figure").classList.add("missing"));
  }

  function renderVersions(model, shown) {
    const rows = [...model.versions].sort((a, b) => b.version - a.version).map((v) => {
      const row = document.createElement("tr");
      if (v.version === shown) row.classList.add("shown");
      const cells = [
        String(v.version),
        v.state + (v.refused_reason ? `: ${v.refused_reason}` : ""),
        typeof v.test_accuracy === "number" ? percent(v.test_accuracy) : "–",
        typeof v.parameters === "number" ? integer.format(v.parameters) : "–",
        v.created ? v.created.slice(0, 16).replace("T", " ") : "–",
      ];
      cells.forEach((text, index) => {
        const cell = document.createElement("td");
        if (index === 2 || index === 3) cell.className = "num";
        cell.textContent = text;
        row.append(cell);
      });
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "small";
      button.textContent = v.version === shown ? "Shown" : "Show";
      button.setAttribute("aria-label", `Show version ${v.version} of ${model.name}`);
      button.setAttribute("aria-pressed", String(v.version === shown));
      button.addEventListener("click", () => showModel(model.name, v.version));
      action.append(button);
      row.append(action);
      return row;
    });
    $("versions").tBodies[0].replaceChildren(...rows);
  }

  $("model-select").addEventListener("change", async (event) => {
    page.model = event.target.value;
    await showModel(page.model);
    predictAgain(); // the same input, answered by the newly chosen model
  });

  // ----- training (admin) -----

  // The training architectures and the no-digit reasons, as the server's OpenAPI document lists them.
  async function loadSchema() {
    let names = FALLBACK_ARCHS;
    try {
      const schemas = (await requestJson("/openapi.json")).components.schemas;
      const reasons = schemas.DigitPrediction.properties.reason["x-reasons"];
      if (reasons && typeof reasons === "object") page.noDigitReasons = reasons;
      const arch = schemas.TrainRequest.properties.arch;
      if (Array.isArray(arch.enum) && arch.enum.length) names = arch.enum;
    } catch (_) {
      // the built-in list is the same as the server's at the time of writing; a reason shows as its code
    }
    $("arch").replaceChildren(...names.map((name) => new Option(name, name, name === "lenet5", name === "lenet5")));
  }

  const authorization = () => ({ Authorization: `Bearer ${page.adminToken}` });

  $("train-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showAlert($("train-error"), "");
    $("train-follow").hidden = true;
    page.adminToken = $("token").value.trim();
    if (!page.adminToken) {
      showAlert($("train-error"), "Enter the admin token (the server's LENET_ADMIN_TOKEN).");
      $("token").focus();
      return;
    }
    const epochs = $("epochs").valueAsNumber;
    if (!Number.isInteger(epochs) || epochs < 1 || epochs > 200) {
      showAlert($("train-error"), "Epochs must be a whole number from 1 to 200.");
      $("epochs").focus();
      return;
    }
    const request = { epochs, arch: $("arch").value, promote: $("promote").value };
    if ($("train-limit").value !== "") {
      const limit = $("train-limit").valueAsNumber;
      if (!Number.isInteger(limit) || limit < 100 || limit > 60000) {
        showAlert($("train-error"), "Training images must be a whole number from 100 to 60,000, or empty for all.");
        $("train-limit").focus();
        return;
      }
      request.train_limit = limit;
    }
    $("train-start").disabled = true;
    try {
      const accepted = await requestJson("/train", {
        method: "POST",
        headers: { ...authorization(), "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
      follow(accepted.job_id);
    } catch (error) {
      $("train-start").disabled = false;
      let message = `Could not start training: ${describe(error)}`;
      if (error.status === 401) message = `The admin token was refused: ${describe(error)}`;
      if (error.status === 409 && error.details.job_id) {
        $("train-follow").dataset.job = error.details.job_id;
        $("train-follow").hidden = false;
      }
      showAlert($("train-error"), message);
    }
  });

  $("train-follow").addEventListener("click", (event) => {
    event.target.hidden = true;
    showAlert($("train-error"), "");
    follow(event.target.dataset.job);
  });

  $("train-cancel").addEventListener("click", async () => {
    if (!page.job) return;
    try {
      await requestJson(`/train/${encodeURIComponent(page.job.id)}`, { method: "DELETE", headers: authorization() });
    } catch (error) {
      showAlert($("train-error"), `Could not cancel the job: ${describe(error)}`);
    }
  });

  function setProgress(done, label) {
    const value = Math.max(0, Math.min(1, done));
    $("train-progress").value = value;
    $("train-percent").textContent = `${Math.round(value * 100)}%`;
    if (label) $("train-progress-label").textContent = label;
  }

  function showJobState(state) {
    $("train-state").textContent = state;
    $("train-status").dataset.state = state;
  }

  function onTrainingEvent(event) {
    const epochs = event.epochs || 1;
    switch (event.event) {
      case "start":
        showJobState("running");
        setProgress(0, `Training started: ${event.epochs} epochs of ${event.steps} steps.`);
        break;
      case "batch":
        showJobState("running");
        setProgress(((event.epoch - 1) + event.step / event.steps) / epochs,
          `Epoch ${event.epoch} of ${epochs}, step ${event.step} of ${event.steps}: loss ${event.loss.toFixed(4)}, ` +
          `accuracy ${percent(event.accuracy)}, ${event.elapsed} s.`);
        break;
      case "epoch":
        showJobState("running");
        setProgress(event.epoch / epochs,
          `Epoch ${event.epoch} of ${epochs} done: accuracy ${percent(event.accuracy)}` +
          (typeof event.val_accuracy === "number" ? `, validation accuracy ${percent(event.val_accuracy)}` : "") +
          `, ${event.elapsed} s.`);
        break;
      case "evaluated":
        setProgress(1, `Trained. Test accuracy: ${percent(event.test_accuracy)}; deciding whether to promote it…`);
        break;
      default:
        break;
    }
  }

  // Server-sent events read with fetch(): EventSource cannot send the Authorization header.
  async function readEvents(response, onEvent) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length) onEvent(JSON.parse(data.join("\n")));
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        } // "event:", "id:", comments: the JSON carries the event name
      }
    }
  }

  async function follow(jobId) {
    if (page.job) page.job.controller.abort();
    const controller = new AbortController();
    page.job = { id: jobId, controller };
    $("train-start").disabled = true;
    $("train-cancel").hidden = false;
    $("train-status").hidden = false;
    $("train-job").textContent = jobId;
    $("train-result").textContent = "";
    showJobState("queued");
    setProgress(0, "Waiting for the job to start…");
    let final = null;
    try {
      const response = await fetch(`/train/${encodeURIComponent(jobId)}/events`,
        { headers: authorization(), signal: controller.signal });
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      await readEvents(response, (event) => {
        if (event.event === "state") final = event;
        else onTrainingEvent(event);
      });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 401 || error.status === 403 || error.status === 404) {
        showAlert($("train-error"), `Could not follow job ${jobId}: ${describe(error)}`);
        endFollow();
        return;
      } // otherwise the stream broke: ask for the job's state below
    }
    try {
      const job = await waitForJob(jobId, controller.signal);
      finish(job, final);
    } catch (error) {
      if (error.name !== "AbortError") showAlert($("train-error"), `Lost track of job ${jobId}: ${describe(error)}`);
    } finally {
      if (page.job && page.job.controller === controller) endFollow();
    }
  }

  const sleep = (ms, signal) => new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });

  // The job record: the stream's last event says the state; the record adds accuracy and the gate.
  async function waitForJob(jobId, signal) {
    for (;;) {
      const job = await requestJson(`/train/${encodeURIComponent(jobId)}`, { headers: authorization(), signal });
      if (TERMINAL.has(job.state)) return job;
      const p = job.progress || {};
      if (p.epochs) setProgress(((p.epoch || 1) - 1 + (p.step || 0) / (p.steps || 1)) / p.epochs);
      await sleep(1000, signal);
    }
  }

  function finish(job, final) {
    const state = final ? final.state : job.state;
    const version = final ? final.version : job.version;
    const reason = (final && final.reason) || job.reason || "";
    const model = job.options && job.options.model ? job.options.model : page.defaultModel || "the model";
    showJobState(state);
    const accuracy = typeof job.test_accuracy === "number" ? ` Test accuracy ${percent(job.test_accuracy)}` +
      (typeof job.gate_accuracy === "number" ? ` (the gate asked for ${percent(job.gate_accuracy)}).` : ".") : "";
    let result;
    if (state === "succeeded" && version !== null && version !== undefined) {
      result = `Promoted: ${model} version ${version} is now served.${accuracy}`;
    } else if (state === "succeeded") {
      result = `Finished, not promoted${reason ? ` (${reason})` : ""}: the candidate is kept on the server` +
        `${job.candidate ? ` in ${job.candidate}` : ""}.${accuracy}`;
    } else if (state === "rejected") {
      result = `Not promoted: ${reason || "below the accuracy gate"}.${accuracy}`;
    } else if (state === "cancelled") {
      result = `Cancelled${reason ? `: ${reason}` : ""}.`;
    } else {
      result = `Failed: ${reason || "see the server log"}.`;
    }
    if (state === "succeeded") setProgress(1, "Done.");
    $("train-result").textContent = result;
    if (version !== null && version !== undefined) loadModels(); // show the new version
  }

  function endFollow() {
    $("train-start").disabled = false;
    $("train-cancel").hidden = true;
  }

  // ----- start -----

  buildProbabilities();
  paint();
  resetResult();
  paintNumber();
  resetReading();
  loadModels();
  loadSchema();
})();
