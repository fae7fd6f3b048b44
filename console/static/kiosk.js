// The capture terminal: camera (getUserMedia), a burst of frames with on-screen liveness
// prompts, the verdict in the page's language, the forced pass after three failures, new
// capture with the ID-card photo, and a clear screen when no check is open or the terminal's
// credential is revoked. Frames go to the console (same origin) and on to the services; nothing
// is kept in browser storage.
(function () {
  "use strict";
  const root = document.getElementById("kiosk");
  if (!root) return;
  const T = JSON.parse(root.dataset.texts);
  const csrf = root.dataset.csrf;
  const lang = root.dataset.lang;
  const $ = (id) => document.getElementById(id);
  const video = $("video"), canvas = $("canvas"), prompt = $("prompt"), verdict = $("verdict");
  const student = $("student"), check = $("check"), forced = $("forced"), startButton = $("start");
  const failures = {};
  let stream = null, busy = false, idPhoto = null, screen = root.dataset.screen;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const mode = () => document.querySelector("input[name=mode]:checked").value;

  async function camera() {
    if (stream) return;
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    video.srcObject = stream;
    await video.play();
    for (let i = 0; i < 50 && !video.videoWidth; i++) await sleep(50);
  }

  function grab(quality) {
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL("image/jpeg", quality || 0.9).split(",")[1];
  }

  const ACTION_PROMPTS = { blink: "prompt_blink", turn_left: "prompt_left", turn_right: "prompt_right" };

  // One continuous take: with a server-issued challenge, the asked action only (six frames,
  // 300 ms apart, each with its time); without one (an older service), the generic prompts.
  async function burst(action) {
    const frames = [], times = [];
    const keys = action ? ["prompt_front", ACTION_PROMPTS[action], ACTION_PROMPTS[action], ACTION_PROMPTS[action],
                           ACTION_PROMPTS[action], ACTION_PROMPTS[action]]
                        : ["prompt_front", "prompt_left", "prompt_right", "prompt_blink", "prompt_front"];
    for (const key of keys) {
      prompt.textContent = T[key];
      await sleep(action ? 300 : 450);
      times.push(Math.round(performance.now()));
      frames.push(grab());
    }
    prompt.textContent = T.waiting;
    return { frames: frames, times: times };
  }

  function challenge(enrol, id) {
    return post("/kiosk/api/challenge", { mode: enrol ? "enrol" : "checkin", check_id: check.value, student_id: id });
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { message: T.error }; }
    if (data.screen === "revoked" || data.screen === "closed" || data.screen === "signed_out") show(data.screen);
    return { ok: response.ok, data: data };
  }

  function say(cls, text, reasons) {
    verdict.className = "verdict " + cls;
    verdict.textContent = "";
    const head = document.createElement("p");
    head.className = "verdict-head";
    head.textContent = text;
    verdict.appendChild(head);
    if (reasons && reasons.length) {
      const list = document.createElement("ul");
      for (const r of reasons) {
        const item = document.createElement("li");
        item.textContent = lang === "en" ? r.en : r.zh;
        list.appendChild(item);
      }
      verdict.appendChild(list);
    }
  }

  function show(next) {
    screen = next;
    $("screen-revoked").hidden = next !== "revoked";
    $("kiosk-main").hidden = next === "revoked";
    $("screen-closed").hidden = next !== "closed";
    if (next === "revoked" && stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    if (next === "signed_out") window.location.assign("/kiosk/signin");
    syncMode();
  }

  function syncMode() {
    const enrol = mode() === "enrol";
    $("id-photo-field").hidden = !enrol;
    $("check-field").hidden = enrol;
    startButton.disabled = busy || (!enrol && screen !== "ready");
  }

  function reset() {
    student.value = "";
    idPhoto = null;
    $("id-photo").value = "";
    $("id-photo-state").textContent = "";
    forced.hidden = true;
    verdict.textContent = "";
    verdict.className = "verdict";
    prompt.textContent = "";
    student.focus();
  }

  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",")[1]);
      reader.onerror = reject;
      reader.readAsDataURL(file);
    });
  }

  async function start() {
    const id = student.value.trim();
    if (busy || !id) { student.focus(); return; }
    busy = true; syncMode(); forced.hidden = true;
    try {
      await camera();
      const enrol = mode() === "enrol";
      if (enrol && !idPhoto && $("id-photo").files.length) idPhoto = await readFile($("id-photo").files[0]);
      if (enrol && !idPhoto) { say("bad", T.error + ": " + $("id-photo").labels[0].textContent); return; }
      const issued = await challenge(enrol, id);
      if (!issued.ok) { say("bad", issued.data.message || T.error); return; }
      const asked = issued.data;
      const take = await burst(asked.action);
      const key = check.value + "|" + id;
      const attempt = (failures[key] || 0) + 1;
      const common = { student_id: id, frames: take.frames, challenge_id: asked.challenge_id,
                       frame_times_ms: asked.challenge_id ? take.times : null };
      const result = enrol
        ? await post("/kiosk/api/enrol", Object.assign({ id_photo: idPhoto }, common))
        : await post("/kiosk/api/checkin", Object.assign({ check_id: check.value, attempt: attempt }, common));
      prompt.textContent = "";
      if (!result.ok) { say("bad", result.data.message || T.error); return; }
      const v = result.data;
      const label = v.status === "verified" ? T.verified : v.status === "rejected" ? T.rejected : T.submitted;
      say(v.status === "verified" ? "good" : v.status === "rejected" ? "bad" : "wait",
          label + (enrol ? "" : " · " + T.attempt.replace("{n}", attempt)), v.reasons);
      if (!enrol && v.status === "rejected") {
        failures[key] = attempt;
        if (attempt >= 3) { forced.hidden = false; $("forced-go").focus(); }
      }
    } catch (e) {
      say("bad", T.camera_error);
    } finally {
      busy = false; syncMode();
    }
  }

  async function forcedPass() {
    const id = student.value.trim();
    if (busy || !id) return;
    busy = true; syncMode();
    try {
      await camera();
      const result = await post("/kiosk/api/forced-pass", { check_id: check.value, student_id: id, evidence_photo: grab(0.92) });
      if (result.ok) { forced.hidden = true; say("good", T.forced_done); } else { say("bad", result.data.message || T.error); }
    } finally {
      busy = false; syncMode();
    }
  }

  async function poll() {
    try {
      const response = await fetch("/kiosk/api/state", { credentials: "same-origin", cache: "no-store" });
      const data = await response.json();
      if (data.screen === "ready") {
        const known = new Set(Array.from(check.options).map((o) => o.value));
        for (const c of data.checks) {
          if (!known.has(c.check_id)) check.add(new Option(c.month + " · " + c.check_id.slice(0, 8), c.check_id));
        }
        const open = new Set(data.checks.map((c) => c.check_id));
        for (const o of Array.from(check.options)) if (!open.has(o.value)) o.remove();
      }
      if (data.screen && data.screen !== screen) show(data.screen);
    } catch (e) { /* the console is unreachable: keep the screen, try again */ }
  }

  student.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); start(); } });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") reset(); });
  startButton.addEventListener("click", start);
  $("next").addEventListener("click", reset);
  $("forced-go").addEventListener("click", forcedPass);
  $("id-photo-camera").addEventListener("click", async () => {
    try { await camera(); idPhoto = grab(0.95); $("id-photo-state").textContent = T.done || "OK"; }
    catch (e) { say("bad", T.camera_error); }
  });
  $("id-photo").addEventListener("change", () => { idPhoto = null; });
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", syncMode);
  syncMode();
  setInterval(poll, Number(root.dataset.poll || 3000));
})();
