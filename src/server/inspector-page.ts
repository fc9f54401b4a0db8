/**
 * The inspector page served at `GET /`: plain HTML and JS, no build step. It reads an admin
 * token from the URL fragment (`/#token=...`, never sent to the server) or asks for one, keeps
 * it in sessionStorage, and renders `GET /v1/inspector`.
 */
export const inspectorHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>storeroom inspector</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  table { border-collapse: collapse; background: #fff; min-width: 28rem; }
  th, td { border: 1px solid #d8dde6; padding: .3rem .6rem; text-align: left; vertical-align: top; }
  th { background: #eef1f6; }
  code { font-family: ui-monospace, monospace; font-size: 12px; }
  .ok { color: #17803d; font-weight: 600; } .bad { color: #b42318; font-weight: 600; }
  #status { color: #5b6472; margin-bottom: 1rem; }
  form { margin-bottom: 1rem; }
</style>
</head>
<body>
<h1>storeroom inspector</h1>
<div id="status">loading...</div>
<form id="login" hidden><label>admin token <input id="token" type="password" size="40"></label> <button>open</button></form>
<section id="content" hidden>
  <h2>Tenants</h2>
  <table id="tenants"><thead><tr><th>tenant</th><th>scope</th><th>resident</th><th>groups and keys</th></tr></thead><tbody></tbody></table>
  <h2>Queues</h2>
  <table id="queues"><thead><tr><th>queue</th><th>depth</th></tr></thead><tbody></tbody></table>
  <h2>Audit chain</h2>
  <table id="audit"><tbody></tbody></table>
</section>
<script>
(function () {
  var status = document.getElementById("status");
  var hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) { sessionStorage.setItem("storeroom-token", hash.get("token")); history.replaceState(null, "", location.pathname); }
  function cell(tr, text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
  function row(tbody, cells) { var tr = document.createElement("tr"); cells.forEach(function (c) { cell(tr, c[0], c[1]); }); tbody.appendChild(tr); return tr; }
  function render(data) {
    var tbody = document.querySelector("#tenants tbody"); tbody.textContent = "";
    data.tenants.forEach(function (t) {
      var tr = row(tbody, [[t.tenant], [t.scope], [t.resident ? "yes" : "no"]]);
      var td = cell(tr, "");
      if (t.error) { td.textContent = t.error; td.className = "bad"; return; }
      t.groups.forEach(function (g) {
        var div = document.createElement("div");
        var b = document.createElement("b"); b.textContent = g.group + " (" + g.count + "): "; div.appendChild(b);
        var code = document.createElement("code"); code.textContent = g.keys.join(", ") + (g.count > g.keys.length ? ", ..." : ""); div.appendChild(code);
        td.appendChild(div);
      });
      if (t.groups.length === 0) td.textContent = "(empty)";
    });
    if (data.tenants.length === 0) row(tbody, [["no tenants yet"], [""], [""], [""]]);
    var q = document.querySelector("#queues tbody"); q.textContent = "";
    Object.keys(data.queues).forEach(function (name) { row(q, [[name], [String(data.queues[name])]]); });
    var a = document.querySelector("#audit tbody"); a.textContent = "";
    row(a, [["rows"], [String(data.audit.rows)]]);
    row(a, [["status"], data.audit.intact ? ["intact", "ok"] : ["broken at seq " + data.audit.break.seq + ": " + data.audit.break.detail, "bad"]]);
    status.textContent = "updated " + new Date(data.generatedAt).toISOString() + " - " + data.tenants.length + " tenant(s)";
    document.getElementById("content").hidden = false;
  }
  function load() {
    var token = sessionStorage.getItem("storeroom-token");
    var headers = token ? { authorization: "Bearer " + token } : {};
    fetch("/v1/inspector", { headers: headers }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        status.textContent = res.status === 401 ? "sign in with an admin token" : "this token is not an admin token";
        document.getElementById("login").hidden = false;
        return null;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (data) { if (data) render(data); }).catch(function (err) { status.textContent = "error: " + err.message; });
  }
  document.getElementById("login").addEventListener("submit", function (e) {
    e.preventDefault();
    sessionStorage.setItem("storeroom-token", document.getElementById("token").value);
    document.getElementById("login").hidden = true;
    load();
  });
  load();
  setInterval(load, 10000);
})();
</script>
</body>
</html>
`;
