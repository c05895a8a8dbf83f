"""The web console in a real browser: Debian's chromium, headless, driven by selenium.

One real farm for the module (``ffrtmp up --no-live --agents 1`` with the API and console on a
free port, real FFmpeg) and one browser. A job submitted from the page completes in the table
and on its page; its page shows the timeline from JobSubmitted to JobCompleted; a long job is
canceled from its page; user input (a label, a job id) holding markup shows as text and runs
nothing. Every wait is a condition with a deadline. Without chromium the tests skip locally
and fail in CI.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ffrtmp.client.probe import http_ok
from ffrtmp.natsd import free_port
from tests.upfarm import Started, Up, environment, running

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
START_S = 90.0
WAIT_S = 60.0
_TEXT = "const n = document.querySelector(arguments[0]); return n ? n.textContent : '';"
_ATTRIBUTE = (
    "const n = document.querySelector(arguments[0]); return n && n.getAttribute(arguments[1]);"
)
_TIMELINE = """
const column = {seq: 1, time: 2, writer: 3, type: 4, changes: 5, detail: 6}[arguments[0]];
return [...document.querySelectorAll('#timeline-body tr')].map(
    (row) => row.querySelector(`td:nth-child(${column})`).textContent);
"""
VIEWER_TOKEN = "viewer-token-0123456789"  # noqa: S105 -- a test farm's own
OPERATOR_TOKEN = "operator-token-0123456789"  # noqa: S105 -- as above
_STATUSES = (
    "return [...document.querySelectorAll('#jobs-body [data-testid=status]')]"
    ".map((n) => n.textContent);"
)
_PARSE = """
const found = [];
const parser = sseParser((event) => found.push(event));
arguments[0].forEach((chunk) => parser.push(chunk));
parser.end();
return found;
"""
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def require_chromium() -> None:
    """Skip when chromium or its driver is absent, unless in CI, where that is a failure."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    why = f"the console's browser tests need Debian's chromium and chromium-driver: no {missing}"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why, allow_module_level=True)


# selenium is imported after the check: a missing browser skips rather than erroring the module.
require_chromium()
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    NoSuchElementException,
    TimeoutException,
)
from selenium.common.exceptions import StaleElementReferenceException as StaleElement  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class Http:
    """An API serving the console, reached at ``base``: whether it answers, and a POST."""

    base: str

    def answers(self) -> bool:
        """Whether the console's page is served."""
        return http_ok(f"{self.base}/", timeout_s=5)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST JSON to the API, as a program would; the decoded answer."""
        request = urllib.request.Request(  # noqa: S310 -- our own loopback API
            f"{self.base}/api/v1{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return json.loads(reply.read())


class Served(Started, Http):
    """``ffrtmp api run`` serving the API and the console on a free port (no farm of its own)."""

    def __init__(self, tmp: Path, args: list[str], port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        super().__init__(tmp, "api", args, environment(NO_COLOR="1"))


class Farm(Up, Http):
    """``ffrtmp up`` with one agent, its API open on loopback."""


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A real farm serving the console, until the module's tests are done."""
    with running(lambda: Farm(tmp_path_factory.mktemp("console"))) as started:
        started.wait_for(started.answers, "the console to be served")
        yield started


@pytest.fixture(scope="module")
def secured(farm: Farm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A second API on the same farm that asks for tokens: a viewer's and an operator's."""
    tmp = tmp_path_factory.mktemp("secured")
    tokens = tmp / "tokens"
    tokens.write_text(f"viewer:eve:{VIEWER_TOKEN}\noperator:olga:{OPERATOR_TOKEN}\n")
    tokens.chmod(0o600)
    port = free_port()
    args = ["api", "run", "--nats", farm.url, "--port", str(port), "--tokens-file", str(tokens)]
    served = Served(tmp, args, port)
    try:
        served.wait_for(served.answers, "the secured API to serve the console")
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless chromium (root in CI: no sandbox), its console messages kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: webdriver.Chrome, farm: Farm) -> Iterator[Page]:
    """The browser on the farm's console; no script error may have been logged by the end."""
    script_errors(browser)  # drop what earlier tests left
    yield Page(browser, farm.base)
    assert not script_errors(browser)


def script_errors(driver: webdriver.Chrome) -> list[str]:
    """The uncaught script errors the browser logged since the last call."""
    logged: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [entry["message"] for entry in logged if "Uncaught" in entry["message"]]


class Page:
    """The browser, with waits on conditions and the console's elements by their ids."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver, self.url = driver, url

    def open(self, path: str) -> None:
        self.driver.get(f"{self.url}/{path}")

    def until(self, check: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> Any:
        """Wait for ``check`` to return something truthy; fail naming ``what`` at the deadline."""
        try:
            return WebDriverWait(
                self.driver, timeout_s, poll_frequency=0.1, ignored_exceptions=[StaleElement]
            ).until(lambda _: check())
        except TimeoutException:
            said = self.text("#error-text") or "(nothing)"
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}; the page says {said}")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        """The first match's text content, read in one step (rows are redrawn as they poll)."""
        return str(self.script(_TEXT, css))

    def attribute(self, css: str, name: str) -> str | None:
        """An attribute of the first match (None when absent), read in one step."""
        found = self.script(_ATTRIBUTE, css, name)
        return None if found is None else str(found)

    def click(self, css: str) -> None:
        """Click the first match, found again if a poll redrew it meanwhile."""

        def clicked() -> bool:
            try:
                self.find(css).click()
            except (StaleElement, NoSuchElementException):
                return False
            return True

        self.until(clicked, f"{css} to be clicked")

    def type(self, css: str, value: str) -> None:
        """Replace a field's text, found again if a poll redrew it meanwhile."""

        def typed() -> bool:
            try:
                box = self.find(css)
                box.clear()
                box.send_keys(value)
            except (StaleElement, NoSuchElementException):
                return False
            return True

        self.until(typed, f"{css} to be typed in")

    def script(self, code: str, *args: object) -> Any:
        return self.driver.execute_script(code, *args)

    def submit_job(self, **fields: str) -> str:
        """Fill the submit form (by field id suffix), submit, and return the new job's id."""
        self.until(lambda: self.finds("#jobs-body tr"), "the jobs table to load")
        for name, value in fields.items():
            self.type(f"#submit-{name}", value)
        self.click("#submit-button")
        self.until(lambda: self.attribute("#notice [data-job]", "data-job"), "the submit's notice")
        return str(self.attribute("#notice [data-job]", "data-job"))

    def job_status(self) -> str:
        return self.text("#job-status [data-testid=status]")

    def timeline(self, column: str = "type") -> list[str]:
        """The timeline's rows: each one's event type, or the text of one of its cells."""
        return list(self.script(_TIMELINE, column))


def subsequence(wanted: list[str], got: list[str]) -> bool:
    """Whether ``wanted`` appears in ``got`` in order, other items between allowed."""
    rest = iter(got)
    return all(item in rest for item in wanted)


@pytest.mark.timeout(120)
def test_a_job_submitted_from_the_page_completes_in_the_table_and_on_its_page(page: Page) -> None:
    """Submit from the form: the job's row and then its page (via the row's link) say completed."""
    page.open("")
    job = page.submit_job(scenario="480p-h264", input="testsrc2", output="none", duration="0.5")
    row = f"#jobs-body tr[data-job='{job}']"
    page.until(lambda: page.text(f"{row} [data-testid=status]") == "completed",
               f"job {job}'s row to say completed")  # fmt: skip
    assert page.text(f"{row} td:nth-child(3)") == "480p-h264"
    page.click(f"{row} a.job-id")
    page.until(lambda: page.job_status() == "completed", f"job {job}'s page to say completed")
    assert page.text("#job-id") == job
    assert page.text("#fields [data-field=scenario]") == "480p-h264"
    assert page.attribute("#progress-bar", "value") == "100"


@pytest.mark.timeout(120)
def test_the_job_page_shows_its_timeline_command_and_log(page: Page, farm: Farm) -> None:
    """A completed job's page lists its events in order with writers, its command and its log."""
    reply = farm.post("/jobs", {"scenario": "480p-h264", "duration_s": 0.5})
    job = reply["job"]["job"]
    page.open(f"job.html?id={job}")
    wanted = ["JobSubmitted", "JobAssigned", "JobStarted", "JobCompleted"]
    page.until(lambda: subsequence(wanted, page.timeline()), f"the timeline {wanted}")
    page.until(lambda: page.job_status() == "completed", "the page to say completed")
    seqs = [int(seq) for seq in page.timeline("seq")]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs), "an event is listed once, however often it streamed"
    assert any("attempt 1 on local-1" in detail for detail in page.timeline("detail"))
    assert all(page.timeline("writer")), "every event names its writer"
    attempt = "#attempts-body tr[data-attempt='1']"
    assert page.text(f"{attempt} td:nth-child(2)") == "local-1"
    assert page.text(f"{attempt} td.outcome") == "completed"
    page.until(lambda: "ffmpeg" in page.text("#command"), "the FFmpeg command line")
    page.until(lambda: page.text("#log") not in ("", "(no log stored yet)"), "the log tail")
    enabled = page.script("return document.querySelectorAll('#actions button:enabled').length")
    assert enabled == 0, "a completed job has no action left"


@pytest.mark.timeout(120)
def test_a_failed_job_says_why_and_where_its_attempt_ran(page: Page, farm: Farm) -> None:
    """A job whose input is missing fails: its attempt, its agent and the reason show."""
    missing = "/nonexistent/console-test.mp4"
    job = farm.post("/jobs", {"scenario": "480p-h264", "input": missing})["job"]["job"]
    page.open(f"job.html?id={job}")
    page.until(lambda: page.job_status() == "failed", "the job to fail")
    assert page.text("#fields [data-field=reason]") == "user_error"
    assert missing in page.text("#fields [data-field=message]")
    attempt = "#attempts-body tr[data-attempt='1']"
    page.until(lambda: page.text(f"{attempt} td.outcome") == "failed", "the failed attempt")
    assert page.text(f"{attempt} td:nth-child(2)") == "local-1"
    assert missing in page.text(f"{attempt} td.why")
    page.until(lambda: page.find("#action-retry").is_enabled(), "retry, offered once failed")


@pytest.mark.timeout(120)
def test_a_long_job_is_paused_resumed_and_canceled_from_its_page(page: Page, farm: Farm) -> None:
    """A running 600 s job pauses and resumes with its page's buttons, and cancel ends it."""
    job = farm.post("/jobs", {"scenario": "480p-h264", "input": "testsrc2", "duration_s": 600})
    job_id = job["job"]["job"]
    page.open(f"job.html?id={job_id}")
    page.until(lambda: page.job_status() == "running", "the long job to run")
    page.until(lambda: "fps" in page.text("#progress-text"), "live progress (fps) to show")
    page.click("#action-pause")
    page.until(lambda: page.job_status() == "paused", "the job to pause")
    page.until(lambda: page.find("#action-resume").is_enabled(), "the resume button")
    page.click("#action-resume")
    page.until(lambda: page.job_status() == "running", "the job to run again")
    assert subsequence(["JobPaused", "JobResumed"], page.timeline())
    page.until(lambda: page.find("#action-cancel").is_enabled(), "the cancel button")
    page.click("#action-cancel")
    page.until(lambda: page.job_status() == "canceled", "the job to be canceled")
    page.until(lambda: "CancelJob" in page.text("#notice"), "the cancel's decision")
    page.until(lambda: page.find("#action-retry").is_enabled(), "retry, offered once canceled")
    page.until(lambda: "JobCanceled" in page.timeline(), "JobCanceled in the timeline")
    page.open("")
    row = f"#jobs-body tr[data-job='{job_id}'] [data-testid=status]"
    page.until(lambda: page.text(row) == "canceled", "the table to say canceled")


@pytest.mark.timeout(120)
def test_a_job_waiting_for_approval_shows_its_prompt_and_runs_once_approved(page: Page) -> None:
    """Submitted with "needs approval": its page asks the prompt; approve, and it completes."""
    page.open("")
    page.click("#submit-approval")
    job = page.submit_job(prompt="Ship it?", duration="0.5")
    page.open(f"job.html?id={job}")
    page.until(lambda: page.job_status() == "pending", "the job to wait for approval")
    page.until(lambda: page.text("#prompt-text") == "Ship it?", "the prompt to show")
    page.type("#answer", "looks right")
    page.click("#action-approve")
    page.until(lambda: page.job_status() == "completed", "the approved job to complete")
    assert "JobInputReceived" in page.timeline()


@pytest.mark.timeout(120)
def test_a_prompt_is_answered_from_the_form_and_a_denied_job_is_canceled(
    page: Page, farm: Farm
) -> None:
    """The prompt's form sends an answer that lets the job run; deny cancels another one."""
    spec = {"scenario": "480p-h264", "duration_s": 0.5, "approval_required": True,
            "approval_prompt": "Which <b>cut</b>?"}  # fmt: skip
    answered, denied = (farm.post("/jobs", spec)["job"]["job"] for _ in range(2))
    page.open(f"job.html?id={answered}")
    page.until(lambda: page.text("#prompt-text") == "Which <b>cut</b>?", "the prompt, as text")
    page.type("#prompt-answer", "the director's")
    page.click("#prompt-respond")
    page.until(lambda: page.job_status() == "completed", "the answered job to complete")
    answer = "#timeline-body tr[data-type=JobInputReceived] td.why"
    assert "the director's" in page.text(answer)
    assert not page.find("#prompt-form").is_displayed()
    page.open(f"job.html?id={denied}")
    page.until(lambda: page.find("#action-deny").is_enabled(), "the deny button")
    page.click("#action-deny")
    page.until(lambda: page.job_status() == "canceled", "the denied job to be canceled")


@pytest.mark.timeout(120)
def test_markup_in_a_label_or_a_job_id_shows_as_text_and_runs_nothing(page: Page) -> None:
    """A label and a job id holding <script> and <img onerror> show as text; no script runs."""
    page.open("")
    job = page.submit_job(labels=f"note={XSS}", duration="0.5")
    page.open(f"job.html?id={job}")
    page.until(lambda: XSS in page.text("#fields [data-field=labels]"), "the label, as text")
    page.open("")
    page.type("#submit-labels", "")
    page.type("#submit-id", XSS)
    page.click("#submit-button")
    page.until(lambda: page.find("#error").is_displayed(), "the bad id's error")
    assert XSS[:40] in page.text("#error-text")
    assert page.attribute("#submit-id", "aria-invalid") == "true"
    page.open(f"job.html?id={urllib.parse.quote(XSS)}")
    page.until(lambda: page.find("#error").is_displayed(), "the unknown job's error")
    assert page.text("#job-id") == XSS
    assert page.script("return window.__pwned") is None
    assert page.script("return document.querySelectorAll('main script, main img').length") == 0
    with pytest.raises(NoAlertPresentException):
        page.driver.switch_to.alert.accept()


@pytest.mark.timeout(120)
def test_the_nodes_page_lists_the_agent_and_steers_it(page: Page) -> None:
    """The local agent shows online with its heartbeat's age; drain, quarantine, clear work."""
    page.open("nodes.html")
    row = "#nodes-body tr[data-node='local-1']"
    page.until(lambda: page.text(f"{row} [data-testid=status]") == "online", "local-1 online")
    assert "ago" in page.text(f"{row} td:nth-child(9)")
    page.click(f"{row} button[data-action=drain]")
    page.until(lambda: "draining" in page.text("#notice") or "drained" in page.text(row),
               "the drain to be recorded")  # fmt: skip
    page.until(lambda: page.text(f"{row} [data-testid=status]").startswith("drain"), "drained")
    page.click(f"{row} button[data-action=clear]")
    page.until(lambda: page.text(f"{row} [data-testid=status]") == "online", "online again")
    page.type(f"{row} [data-testid=quarantine-reason]", "disk <b>full</b>")
    page.click(f"{row} button[data-action=quarantine]")
    status = f"{row} [data-testid=status]"
    page.until(lambda: page.text(status) == "quarantined: disk <b>full</b>", "the quarantine")
    page.click(f"{row} button[data-action=clear]")
    page.until(lambda: page.text(status) == "online", "online after the quarantine")


@pytest.mark.timeout(120)
def test_the_sql_box_shows_a_query_as_a_table(page: Page) -> None:
    """A read-only query's columns and rows show as a table; a write is refused with a message."""
    page.open("sql.html")
    page.type("#sql", "SELECT 1 + 1 AS two, '<b>x</b>' AS markup")
    page.click("#sql-run")
    page.until(lambda: page.finds("#sql-result tbody tr"), "the result table")
    assert [th.text for th in page.finds("#sql-result th")] == ["two", "markup"]
    assert [td.text for td in page.finds("#sql-result td")] == ["2", "<b>x</b>"]
    page.type("#sql", "DROP TABLE jobs")
    page.click("#sql-run")
    page.until(lambda: page.find("#error").is_displayed(), "the refusal")
    assert page.text("#error-text")


@pytest.mark.timeout(120)
def test_a_secured_api_asks_for_a_token_and_a_viewer_may_not_submit(
    browser: webdriver.Chrome, secured: Served
) -> None:
    """A 401 asks for a token; a viewer's reads, its submit shows the 403; an operator's submits."""
    page = Page(browser, secured.base)
    page.open("")
    page.until(lambda: page.find("#token-form").is_displayed(), "the token prompt")
    assert "bearer token" in page.text("#error-text")
    page.type("#token-input", VIEWER_TOKEN)
    page.click("#token-form button[type=submit]")
    page.until(lambda: " of " in page.text("#jobs-meta"), "the jobs table, read as a viewer")
    assert not page.find("#error").is_displayed()
    page.click("#submit-button")
    page.until(lambda: page.find("#error").is_displayed(), "the viewer's submit to be refused")
    assert "role viewer may not do this" in page.text("#error-text")
    page.click("#token-button")
    page.type("#token-input", OPERATOR_TOKEN)
    page.click("#token-form button[type=submit]")
    job = page.submit_job(duration="0.5")
    assert job
    assert script_errors(browser) == []


@pytest.mark.timeout(120)
def test_the_status_filter_narrows_the_table(page: Page, farm: Farm) -> None:
    """Ticking "completed" shows only completed jobs, and the address keeps the filter."""
    job = farm.post("/jobs", {"scenario": "480p-h264", "duration_s": 0.5})["job"]["job"]
    page.open("")
    row = f"#jobs-body tr[data-job='{job}'] [data-testid=status]"
    page.until(lambda: page.text(row) == "completed", "the new job to complete")
    page.click("#filter-status input[value=completed]")
    page.until(lambda: "status=completed" in page.driver.current_url, "the filter in the address")
    page.until(lambda: set(page.script(_STATUSES)) == {"completed"}, "only completed rows")
    page.click("#filter-status input[value=completed]")
    page.click("#filter-status input[value=canceled]")
    page.until(lambda: set(page.script(_STATUSES)) <= {"canceled"}, "only canceled rows")
    assert page.text(row) == ""
    page.until(lambda: "matching" in page.text("#jobs-meta"), "the filter's own count")
    assert page.script("return document.getElementById('next-page').disabled") is True


def test_the_event_stream_parser_joins_chunks_split_anywhere(page: Page) -> None:
    """Events split across reads, CRLF line ends, comments and multi-line data parse whole."""
    page.open("sql.html")
    parsed = page.script(_PARSE, ["event: history\r\nid: 7\r\nda", 'ta: {"a":', "1}\r\n\r",
                                  "\n: keep-alive\n\nevent: end\ndata: x\ndata: y\n"])  # fmt: skip
    assert parsed == [
        {"event": "history", "data": '{"a":1}', "id": "7"},
        {"event": "end", "data": "x\ny", "id": "7"},
    ]
