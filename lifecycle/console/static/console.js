// The console's few lines of script; every page works without them.
// 1. A tenant page with a running operation re-reads itself every few seconds (#live).
// 2. The purge confirmation's button stays disabled until the tenant id is typed exactly.
(function () {
  const live = document.getElementById("live");
  if (live && live.dataset.refresh) {
    setTimeout(async function refresh() {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("live");
      if (!fresh) return;
      const open = [...live.querySelectorAll("details[open] time")].map((t) => t.dateTime);
      live.replaceWith(fresh);
      fresh.querySelectorAll("details time").forEach((t) => {
        if (open.includes(t.dateTime)) t.closest("details").open = true;
      });
      if (fresh.dataset.refresh) setTimeout(refresh, Number(fresh.dataset.refresh));
    }, Number(live.dataset.refresh));
  }
  document.querySelectorAll("[data-must-equal]").forEach((input) => {
    const button = input.form.querySelector("button[type=submit]");
    const check = () => { button.disabled = input.value !== input.dataset.mustEqual; };
    input.addEventListener("input", check);
    check();
  });
})();
