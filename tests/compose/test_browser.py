"""The trigger form, the Pachyderm connection form and the models page, in a real browser.

Debian's chromium (headless) is driven by its chromedriver through Selenium against the
api-server of a real Airflow deployment (the deployment test's :class:`AirflowDeployment`),
lighter than the deployment test's: only the bundled DAGs, no pachd, no training. The
DAG stays paused, so the run the form starts is created (with the form's values as its
conf) and then waits in the queue; nothing runs.

The models page reads a bookkeeping store the fixture fills with
:func:`cpsign_airflow.testing.model_history.write_history`; its expectations are
what that wrote.

The expectations are read from the code: the form's fields, titles and sections from the
DAG's params (as the REST API reports them), the connection form from the provider's
metadata. On a failure the test saves a screenshot and the page source into its tmp_path
and names them in the assertion message.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.cpsign.configuration import PREDICTOR_TYPES
from cpsign_airflow.get_provider_info import get_provider_info
from cpsign_airflow.testing.airflow_deployment import AirflowDeployment
from cpsign_airflow.testing.model_history import RunFact, write_history

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "cpsign_training"
#: Airflow's own section of the trigger form (run id, note, configuration JSON).
AIRFLOW_SECTION = "Advanced Options"
WAIT_SECONDS = 30
CONSOLE_URL = "http://console.example:4000"
INSTALL_HINT = (
    "`make test` installs it when run as root (scripts/system-deps.sh: "
    "apt-get install chromium chromium-driver)"
)
pytestmark = pytest.mark.timeout(600)

#: A field's label (without the required-marker), its param name and its kind of widget,
#: for every field of a form (or of an element of it), as the Airflow UI renders them.
FIELDS_JS = """
const scope = arguments[0];
return Array.from(scope.querySelectorAll('[data-scope="field"][data-part="root"]')).map(root => {
  const label = root.querySelector('label[data-part="label"]');
  let text = '';
  if (label) {
    for (const node of label.childNodes) {
      if (!(node.nodeType === 1 && node.getAttribute('aria-hidden') === 'true')) {
        text += node.textContent;
      }
    }
  }
  const named = root.querySelector(
    '[id^="element_"], [id^="number-input:element_"], [id^="switch:element_"], [name^="element_"]');
  let key = null;
  if (named) {
    const ident = (named.id || '').includes('element_') ? named.id : named.getAttribute('name');
    key = ident.replace(/^.*?element_/, '');
  }
  let widget = 'other';
  if (root.querySelector('[data-scope="switch"] input[type="checkbox"]')) widget = 'switch';
  else if (root.querySelector('[data-scope="number-input"] input[role="spinbutton"]')) widget = 'number';
  else if (root.querySelector('input[role="combobox"]')) widget = 'select';
  else if (root.querySelector('[role="code"]')) widget = 'json';
  else if (root.querySelector('textarea')) widget = 'textarea';
  else if (root.querySelector('input[type="text"], input:not([type])')) widget = 'text';
  else if (root.querySelector('input[type="number"]')) widget = 'number';
  else if (root.querySelector('input[type="password"]')) widget = 'password';
  const input = root.querySelector('input:not([type="hidden"]), textarea');
  return {
    label: text.trim(),
    key: key,
    widget: widget,
    visible: !!label && label.checkVisibility(),
    name: input ? input.getAttribute('name') : null,
    placeholder: input ? input.getAttribute('placeholder') : null,
  };
});
"""

#: The widgets the brief names, by param: the form must render these exactly so.
NAMED_WIDGETS = {
    "workflow_name": "text",
    "database_query": "textarea",
    "ptype": "select",
    "impl": "select",
    "cost": "number",
    "nr_models": "number",
    "preflight": "switch",
    "deploy_prediction_service": "switch",
    "reseed_on_retrain": "switch",
    "advanced": "json",
}


def _expected_widget(schema: dict[str, Any]) -> str | None:
    """The widget a param's schema calls for, where that is unambiguous (else None)."""
    types = schema.get("type", "string")
    types = [t for t in (types if isinstance(types, list) else [types]) if t != "null"]
    if len(types) != 1:
        return None
    if "enum" in schema:
        return "select"
    kind = types[0]
    if kind == "boolean":
        return "switch"
    if kind in ("integer", "number"):
        return "number"
    if kind == "object":
        return "json"
    if kind == "string":
        return "textarea" if schema.get("format") == "multiline" else "text"
    return None


# --------------------------------------------------------------------------- the deployment


@pytest.fixture(scope="module", autouse=True)
def browser_binaries() -> tuple[str, str]:
    """chromium and its chromedriver, checked before the deployment starts; never skipped."""
    chromium = shutil.which("chromium")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.fail(
            f"chromium ({chromium or 'missing'}) and chromedriver ({chromedriver or 'missing'}) "
            f"are needed for the browser test: {INSTALL_HINT}"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]' (it is in the test extra)")
    return chromium, chromedriver


#: What the airflow fixture wrote into the models page's bookkeeping store.
model_history: dict[str, list[RunFact]] = {}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:
    """Airflow's four components with the bundled DAGs: enough to show the forms and queue a run."""
    work = tmp_path_factory.mktemp("browser-deployment")
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work}/airflow/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "",
        # new DAGs start paused (Airflow's default): the form's run is queued, never run
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CPSIGN__TRAINING_DEADLINE_MINUTES": "0",
        "AIRFLOW__CPSIGN__TASK_RETRIES": "0",
    }
    # the models page reads a bookkeeping store holding a history; Console links come from
    # the Pachyderm connection's console_url
    with TrainingLedger.from_url(f"sqlite:///{work}/bookkeeping.db") as ledger:
        ledger.upgrade_schema()
        model_history.update(runs=write_history(ledger).runs)
    env["AIRFLOW_CONN_CPSIGN_BOOKKEEPING"] = f"sqlite:///{work}/bookkeeping.db"
    env["AIRFLOW_CONN_PACHYDERM_DEFAULT"] = json.dumps(
        {"conn_type": "pachyderm", "host": "pachd", "port": 30650,
         "extra": {"console_url": CONSOLE_URL}}
    )  # fmt: skip
    deployment = AirflowDeployment(work, env)
    try:
        deployment.start(timeout=300)
        for dag_id in ("cpsign_setup", DAG_ID, "cpsign_retraining"):
            deployment.wait_for_dag(dag_id)
        errors = deployment.api("GET", "/api/v2/importErrors")
        assert errors["total_entries"] == 0, errors
        yield deployment
    finally:
        deployment.stop()


# --------------------------------------------------------------------------- the browser


class Browser:
    """A headless chromium session with explicit waits and failure evidence."""

    def __init__(self, driver: Any, base: str, evidence: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.base = base
        self.evidence = evidence
        self._shots = itertools.count(1)
        self._wait = WebDriverWait(driver, WAIT_SECONDS)

    # evidence

    def fail(self, message: str) -> None:
        n = next(self._shots)
        shot = self.evidence / f"failure-{n}.png"
        page = self.evidence / f"failure-{n}.html"
        try:
            self.driver.save_screenshot(str(shot))
            page.write_text(self.driver.page_source, encoding="utf-8")
            where = f"screenshot {shot}, page source {page}, at {self.driver.current_url}"
        except Exception as err:  # the browser itself may be gone
            where = f"no screenshot ({err!r})"
        raise AssertionError(f"{message}\n[{where}]")

    def expect(self, condition: object, message: str) -> None:
        if not condition:
            self.fail(message)

    def wait(self, condition: Callable[[Any], Any], what: str, ignored=()) -> Any:
        """Wait (explicitly, polling the page) until ``condition(driver)`` is truthy."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        waiter = (
            WebDriverWait(self.driver, WAIT_SECONDS, ignored_exceptions=ignored)
            if ignored
            else self._wait
        )
        try:
            return waiter.until(condition)
        except TimeoutException:
            self.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")

    # actions

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def scroll_to(self, element: Any) -> Any:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        return element

    def click(self, element: Any, what: str) -> None:
        """Click once the element takes clicks (dialogs and accordions animate)."""
        from selenium.common.exceptions import ElementClickInterceptedException

        def clicked(_driver: Any) -> bool:
            self.scroll_to(element).click()
            return True

        self.wait(clicked, f"{what} to take a click", ignored=(ElementClickInterceptedException,))

    def replace_text(self, element: Any, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        self.scroll_to(element)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        element.send_keys(text)

    def fields(self, scope: Any) -> list[dict[str, Any]]:
        return self.driver.execute_script(FIELDS_JS, scope)

    def login(self, username: str, password: str) -> None:
        """Through the simple auth manager's login page, as a user signs in."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.open("/auth/login")
        user = self.wait(ec.visibility_of_element_located((By.NAME, "username")), "the login form")
        user.send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait(lambda d: d.get_cookie("_token"), "the login to set the _token cookie")
        self.wait(lambda d: "/auth/" not in d.current_url, "the login page to hand over")

    def choose(self, select: Any, what: str, label: str | None = None) -> list[str]:
        """Open a dropdown, read its option labels, pick ``label`` (default: the current one)."""
        from selenium.webdriver.common.by import By

        current = select.text.strip()
        self.click(select.find_element(By.CSS_SELECTOR, "input[role=combobox]"), what)
        options = self.wait(
            lambda d: select.find_elements(By.CSS_SELECTOR, "[role=option]"), f"{what}'s options"
        )
        shown = [o.text.strip() for o in options]
        wanted = current if label is None else label
        self.expect(wanted in shown, f"{what} offers {shown}, not {wanted!r}")
        self.click(options[shown.index(wanted)], f"{what}'s option {wanted!r}")
        self.wait(lambda d: select.text.strip() == wanted, f"{what} to show {wanted!r}")
        return shown

    def open_section(self, form: Any, title: str) -> Any:
        """Expand the accordion section ``title`` of ``form``; its (visible) content."""
        from selenium.common.exceptions import ElementClickInterceptedException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        headers = [
            h
            for h in form.find_elements(By.CSS_SELECTOR, "button[data-part=item-trigger]")
            if h.text.strip() == title
        ]
        self.expect(len(headers) == 1, f"{len(headers)} section headers named {title!r}")
        [header] = headers

        def expanded(_driver: Any) -> bool:
            # one section is open at a time; a click during another's animation may miss
            if header.get_attribute("aria-expanded") == "true":
                return True
            self.scroll_to(header).click()
            return False

        self.wait(
            expanded,
            f"section {title!r} to expand",
            ignored=(ElementClickInterceptedException,),
        )
        return self.wait(
            ec.visibility_of_element_located((By.ID, header.get_attribute("aria-controls"))),
            f"the fields of section {title!r}",
        )


@pytest.fixture
def browser(
    browser_binaries: tuple[str, str], airflow: AirflowDeployment, tmp_path: Path
) -> Iterator[Browser]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    # the driver's path is given, so Selenium Manager neither looks up nor downloads one
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        session = Browser(driver, airflow.base, tmp_path)
        session.login(airflow.username, airflow.password)
        yield session
    finally:
        driver.quit()


# --------------------------------------------------------------------------- the trigger form


def _duplicates(labels: list[str]) -> list[str]:
    counts = Counter(label.casefold() for label in labels)
    return sorted({label for label in labels if counts[label.casefold()] > 1})


def test_the_training_form_has_sections_typed_widgets_unique_labels_and_starts_a_run(
    airflow: AirflowDeployment, browser: Browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    params = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/details")["params"]
    sections = list(dict.fromkeys(p["schema"]["section"] for p in params.values()))
    assert {"Workflow", "Query", "Training", "Run options"} <= set(sections), sections
    # where ingestion connects is the administrator's connection, not a form field
    assert "Source database" not in sections, sections
    runs_before = {
        r["dag_run_id"] for r in airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
    }

    browser.open(f"/dags/{DAG_ID}")
    trigger = browser.wait(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "[data-testid=trigger-dag-button]")),
        "the DAG page's Trigger button",
    )
    browser.click(trigger, "the Trigger button")
    form = browser.wait(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=config-form]")),
        "the trigger form",
    )
    dialog = form.find_element(By.XPATH, "ancestor::*[@role='dialog'][1]")

    # sections: the params' own, in order, then Airflow's "Advanced Options", the only one so named
    headers = [
        h.text.strip()
        for h in form.find_elements(By.CSS_SELECTOR, "button[data-part=item-trigger]")
    ]
    browser.expect(
        headers == [*sections, AIRFLOW_SECTION],
        f"form sections {headers}, expected {[*sections, AIRFLOW_SECTION]}",
    )
    advanced = [h for h in headers if "advanced" in h.casefold()]
    browser.expect(advanced == [AIRFLOW_SECTION], f"sections named like Airflow's: {advanced}")

    # each section, opened as a user does: its fields visible, titled and typed as the params say
    seen: dict[str, dict[str, Any]] = {}
    for section in headers:
        content = browser.open_section(form, section)
        for field in browser.fields(content):
            browser.expect(field["visible"], f"{field} of section {section!r} is not visible")
            if section == AIRFLOW_SECTION:
                browser.expect(field["key"] is None, f"a param in Airflow's own section: {field}")
                continue
            key = field["key"]
            browser.expect(key in params, f"section {section!r}: a field of no param: {field}")
            browser.expect(key not in seen, f"param {key} rendered twice: {field}, {seen.get(key)}")
            seen[key] = {**field, "section": section}
            schema = params[key]["schema"]
            if field["widget"] == "select" and "enum" in schema:
                # each choice labelled by values_display, else as itself; none reads "null"
                display = schema.get("values_display") or {}
                names = ["null" if v is None else str(v) for v in schema["enum"]]
                expected = [display.get(name, name) for name in names]
                select = content.find_element(By.ID, f"element_{key}")
                shown = browser.choose(select, f"the {key} dropdown")
                browser.expect(shown == expected, f"{key} offers {shown}, expected {expected}")
                browser.expect("null" not in shown, f"{key} offers a bare 'null': {shown}")
    browser.expect(
        sorted(seen) == sorted(params), f"params without a field: {sorted(set(params) - set(seen))}"
    )
    for key, param in params.items():
        field, schema = seen[key], param["schema"]
        browser.expect(
            field["section"] == schema["section"],
            f"{key} is in section {field['section']!r}, its param says {schema['section']!r}",
        )
        browser.expect(
            field["label"] == schema["title"],
            f"{key} is labelled {field['label']!r}, its title is {schema['title']!r}",
        )
        expected = NAMED_WIDGETS.get(key) or _expected_widget(schema)
        if expected:
            browser.expect(
                field["widget"] == expected,
                f"{key} ({schema}) is rendered as {field['widget']!r}, expected {expected!r}",
            )

    # every label of the dialog, Airflow's own included, is unique
    labels = [f["label"] for f in browser.fields(dialog)]
    browser.expect(
        len(labels) >= len(params) + 3,  # + Logical Date, Run ID, Dag Run Note, Configuration
        f"only {len(labels)} labels in the trigger dialog: {labels}",
    )
    browser.expect(
        not _duplicates(labels), f"duplicate labels in the trigger form: {_duplicates(labels)}"
    )

    # change values through each kind of widget
    values = {
        "workflow_name": "BrowserCheck",
        "database_query": "SELECT smiles, logd\nFROM compounds{}",
        "cost": 2.5,
        "ptype": 5,
        "preflight": False,
    }
    assert all(params[k]["value"] != v for k, v in values.items()), "pick values that differ"
    content = browser.open_section(form, "Workflow")
    browser.replace_text(
        content.find_element(By.ID, "element_workflow_name"), values["workflow_name"]
    )
    content = browser.open_section(form, "Query")
    browser.replace_text(
        content.find_element(By.ID, "element_database_query"), values["database_query"]
    )
    content = browser.open_section(form, "Training")
    browser.replace_text(
        content.find_element(By.CSS_SELECTOR, "input[name=element_cost]"), str(values["cost"])
    )
    shown = browser.choose(
        content.find_element(By.ID, "element_ptype"),
        "the ptype dropdown",
        f"{values['ptype']}: {PREDICTOR_TYPES[values['ptype']]}",
    )
    browser.expect(
        shown == [f"{v}: {name}" for v, name in PREDICTOR_TYPES.items()],
        f"ptype's options are {shown}",
    )
    content = browser.open_section(form, "Run options")
    preflight = content.find_element(By.NAME, "element_preflight")
    browser.click(content.find_element(By.ID, "switch:element_preflight"), "the preflight switch")
    browser.wait(lambda d: not preflight.is_selected(), "the preflight switch to turn off")
    # keep the DAG paused: the run is created and queued, and nothing runs
    unpause = dialog.find_element(
        By.XPATH,
        f".//label[@data-scope='checkbox'][contains(normalize-space(), 'Unpause {DAG_ID}')]",
    )
    unpause_box = unpause.find_element(By.TAG_NAME, "input")
    if unpause_box.is_selected():
        browser.click(unpause, "the unpause checkbox")
        browser.wait(lambda d: not unpause_box.is_selected(), "the unpause checkbox to clear")

    submit = dialog.find_element(By.CSS_SELECTOR, "[data-testid=trigger-dag-submit]")
    browser.click(submit, "the form's Trigger button")

    def outcome(driver: Any) -> str | None:
        """The new run's page, or the error Airflow shows when it refuses the run."""
        if f"/dags/{DAG_ID}/runs/" in driver.current_url:
            return "run"
        errors = driver.find_elements(By.CSS_SELECTOR, "[data-scope=toast][data-type=error]")
        return next((f"refused: {e.text!r}" for e in errors if e.text.strip()), None)

    result = browser.wait(outcome, "the new run's page")
    browser.expect(result == "run", f"the form's run was {result}")
    run_id = urllib.parse.unquote(browser.driver.current_url.split("/runs/", 1)[1].split("/")[0])

    # the run exists with the form's values as its conf: the changed ones, the rest as shown
    runs = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
    new = [r["dag_run_id"] for r in runs if r["dag_run_id"] not in runs_before]
    browser.expect(new == [run_id], f"new runs {new}, the UI shows {run_id}")
    run = airflow.dag_run(DAG_ID, run_id)
    expected_conf = {key: param["value"] for key, param in params.items()} | values
    differences = {
        key: (run["conf"].get(key, "<missing>"), expected_conf.get(key, "<missing>"))
        for key in set(run["conf"]) | set(expected_conf)
        if run["conf"].get(key, "<missing>") != expected_conf.get(key, "<missing>")
    }
    assert not differences, f"run {run_id}'s conf differs from the form (conf, form): {differences}"
    assert run["run_type"] == "manual" and run["state"] == "queued", run
    assert airflow.api("GET", f"/api/v2/dags/{DAG_ID}")["is_paused"] is True


# --------------------------------------------------------------------------- the connection form

#: The standard fields of Airflow 3's connection form: ui-field-behaviour name -> input name.
STANDARD_FIELDS = {
    "description": "description",
    "schema": "url_schema",
    "host": "host",
    "port": "port",
    "login": "login",
    "password": "password",
}


def test_the_pachyderm_connection_form_shows_the_providers_fields(
    airflow: AirflowDeployment, browser: Browser
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    [declared] = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "pachyderm"
    ]
    widgets = declared["conn-fields"]
    behaviour = declared["ui-field-behaviour"]
    hidden = set(behaviour["hidden-fields"])
    relabeled = behaviour.get("relabeling", {})
    placeholders = behaviour.get("placeholders", {})

    browser.open("/connections")
    add = browser.wait(
        ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Add Connection']")),
        "the Add Connection button",
    )
    browser.click(add, "Add Connection")
    dialog = browser.wait(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "[role=dialog][data-state=open]")),
        "the connection dialog",
    )
    conn_type = dialog.find_element(
        By.XPATH,
        ".//label[starts-with(normalize-space(), 'Connection Type')]"
        "/ancestor::*[@data-part='root'][1]//input[@role='combobox']",
    )
    # disabled while the UI loads the connection types (Airflow 3.2 imports every hook for them)
    browser.wait(ec.element_to_be_clickable(conn_type), "the Connection Type field to be enabled")
    conn_type.send_keys(declared["hook-name"])
    option = browser.wait(
        ec.element_to_be_clickable(
            (By.XPATH, f"//*[@role='option'][normalize-space()='{declared['hook-name']}']")
        ),
        f"the connection type {declared['hook-name']!r}",
    )
    browser.click(option, "the connection type option")
    sections = browser.wait(
        lambda d: (
            [
                h.text.strip()
                for h in dialog.find_elements(By.CSS_SELECTOR, "button[data-part=item-trigger]")
            ]
            or None
        ),
        "the connection type's sections",
        ignored=(StaleElementReferenceException,),  # the dialog re-renders for the type
    )
    browser.expect(
        {"Standard Fields", "Extra Fields"} <= set(sections), f"connection form sections {sections}"
    )

    # standard fields: relabelled, with placeholders; the hidden ones are not rendered
    standard = browser.fields(browser.open_section(dialog, "Standard Fields"))
    by_name = {f["name"]: f for f in standard}
    for field, label in relabeled.items():
        shown = by_name.get(STANDARD_FIELDS[field])
        browser.expect(shown and shown["label"] == label, f"{field} should read {label!r}: {shown}")
    for field, placeholder in placeholders.items():
        shown = by_name.get(STANDARD_FIELDS[field])
        browser.expect(
            shown and shown["placeholder"] == placeholder,
            f"{field}'s placeholder should be {placeholder!r}: {shown}",
        )
    # Airflow 3's UI can hide only the standard fields; "extra" stays as "Extra Fields JSON"
    for field in hidden & set(STANDARD_FIELDS):
        browser.expect(
            STANDARD_FIELDS[field] not in by_name, f"hidden field {field} is shown: {standard}"
        )
        browser.expect(
            field.casefold() not in {f["label"].casefold() for f in standard},
            f"hidden field {field}'s label is shown: {standard}",
        )

    # the provider's own fields, labelled as declared, visible once their section is open
    extra = browser.fields(browser.open_section(dialog, "Extra Fields"))
    by_key = {f["key"]: f for f in extra}
    browser.expect(
        set(by_key) == set(widgets), f"extra fields {sorted(by_key)} != {sorted(widgets)}"
    )
    for key, widget in widgets.items():
        field = by_key[key]
        browser.expect(field["visible"], f"extra field {key} is not visible: {field}")
        browser.expect(
            field["label"] == widget["label"],
            f"{key} reads {field['label']!r}, not {widget['label']!r}",
        )
        expected = _expected_widget(widget["schema"])
        if expected:
            browser.expect(
                field["widget"] == expected,
                f"{key} is a {field['widget']!r}, expected {expected!r}",
            )

    labels = [f["label"] for f in browser.fields(dialog)]
    browser.expect(
        all(w["label"] in labels for w in widgets.values()), f"labels of the dialog: {labels}"
    )
    browser.expect(
        not _duplicates(labels), f"duplicate labels in the connection form: {_duplicates(labels)}"
    )
    browser.expect(
        not set(labels) & set(widgets), f"a field labelled by its key, not a title: {labels}"
    )


# --------------------------------------------------------------------------- the models page

#: Per run row of the history table: its id, status and Console link; and the plot's marks.
MODELS_PAGE_JS = """
const rows = Array.from(document.querySelectorAll('#runs > tbody > tr')).map(tr => ({
  id: Number(tr.dataset.runId),
  status: tr.dataset.status,
  console: (tr.querySelector('a.console') || {}).href || null,
  visible: tr.checkVisibility(),
}));
const svg = document.querySelector('#history-plot svg');
const box = svg ? svg.getBoundingClientRect() : null;
const marks = id => document.querySelectorAll(`#history-plot svg g[id="${id}"] use`).length;
return {
  rows: rows,
  plot: svg ? {width: box.width, height: box.height,
               validity: marks('validity'), efficiency: marks('efficiency'),
               held_back: marks('held-back'),
               target: !!document.querySelector('#history-plot g[id="target-confidence"] path')}
            : null,
};
"""


def test_the_models_page_shows_workflows_history_and_plot_to_a_logged_in_user(
    airflow: AirflowDeployment, browser: Browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    runs = model_history["runs"]
    workflows = sorted({run.workflow for run in runs})

    # Airflow's navigation has the entry; it shows the page inside the UI
    browser.driver.set_window_size(1500, 1250)
    browser.open("/")
    entry = browser.wait(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "a[href$='plugin/cpsign-models']")),
        "the CPSign models entry in Airflow's navigation",
    )
    browser.click(entry, "the CPSign models entry")
    frame = browser.wait(
        ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[src*='cpsign-models/']")),
        "the models page inside Airflow's UI",
    )
    browser.driver.switch_to.frame(frame)
    names = browser.wait(
        lambda d: (
            [
                tr.get_attribute("data-workflow")
                for tr in d.find_elements(By.CSS_SELECTOR, "#workflows > tbody > tr")
            ]
            or None
        ),
        "the workflows table",
    )
    browser.expect(sorted(names) == workflows, f"workflows shown {names}, written {workflows}")
    browser.click(browser.driver.find_element(By.LINK_TEXT, "LogD"), "the LogD workflow's link")
    browser.wait(ec.presence_of_element_located((By.ID, "history-plot")), "LogD's history")
    browser.driver.switch_to.default_content()
    shot = tmp_path / "models-page.png"
    browser.driver.save_screenshot(str(shot))
    if os.environ.get("CPSIGN_SCREENSHOT_DIR"):  # how README's screenshot is taken
        shutil.copy(shot, Path(os.environ["CPSIGN_SCREENSHOT_DIR"]) / "models-page.png")

    # the history on its own: every run a row, newest first; the plot drawn with its marks
    browser.open("/cpsign-models/workflows/LogD")
    browser.wait(ec.presence_of_element_located((By.ID, "runs")), "LogD's history")
    shown = browser.driver.execute_script(MODELS_PAGE_JS)
    logd = sorted((run for run in runs if run.workflow == "LogD"), key=lambda r: -r.id)
    browser.expect(
        [(row["id"], row["status"]) for row in shown["rows"]]
        == [(run.id, run.status) for run in logd],
        f"history rows {shown['rows']} != runs {[(r.id, r.status) for r in logd]}",
    )
    browser.expect(all(row["visible"] for row in shown["rows"]), "a history row is hidden")
    for row, run in zip(shown["rows"], logd, strict=True):
        want = f"{CONSOLE_URL}/lineage/cpsign/commit-sets/{run.commit_set_id}"
        browser.expect(
            row["console"] == (want if run.commit_set_id else None),
            f"run {run.id}'s Console link {row['console']!r}",
        )
    plot = shown["plot"]
    modelled = [run for run in logd if run.validity]
    browser.expect(plot is not None, "no plot on the page")
    browser.expect(plot["width"] > 300 and plot["height"] > 150, f"plot drawn at {plot}")
    browser.expect(
        plot["validity"] == plot["efficiency"] == len(modelled),
        f"plot marks {plot} for {len(modelled)} models",
    )
    browser.expect(
        plot["held_back"] == sum(run.quality == "held_back" for run in modelled) > 0,
        f"held-back marks {plot['held_back']}",
    )
    browser.expect(plot["target"], "the target confidence line is not drawn")

    # a failed run's page: its error and its jobs
    failed = next(run for run in logd if run.status == "failed")
    browser.open(f"/cpsign-models/runs/{failed.id}")
    error = browser.wait(ec.visibility_of_element_located((By.ID, "error")), "the run's error")
    browser.expect(error.text == failed.error, f"error shown {error.text!r}")
    jobs = browser.driver.find_elements(By.CSS_SELECTOR, "#jobs > tbody > tr")
    browser.expect(len(jobs) == failed.jobs, f"{len(jobs)} job rows, {failed.jobs} recorded")


def test_the_models_page_sends_a_visitor_without_a_session_to_airflows_login(
    airflow: AirflowDeployment,
) -> None:
    import urllib.request

    from airflow import __version__ as airflow_version

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(f"{airflow.base}/cpsign-models/workflows/LogD", timeout=30)
    assert answer.value.code == 303
    location = answer.value.headers["Location"]
    if tuple(int(p) for p in airflow_version.split(".")[:2]) < (3, 3):
        # Airflow 3.2's SimpleAuthManager.get_url_login drops next_url (3.3 keeps it): the
        # visitor is sent to the login page, and lands on Airflow's home after it.
        assert location == "/auth/login", location
        return
    assert location.startswith("/auth/login?next="), location
    assert urllib.parse.unquote(location).endswith("/cpsign-models/workflows/LogD")
