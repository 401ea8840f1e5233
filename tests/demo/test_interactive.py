"""`migratebot demo --interactive` in a real headless Chromium: people act from the page, and what
they do reaches the bot as signed Slack requests — an SRE requests the next wave, a team lead
approves it, the request message changes and the database says approved."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from bot.cli import main
from bot.demo_interactive import InteractiveDemo
from bot.settings import Settings

PLAN = Path(__file__).resolve().parents[2] / "examples" / "plan.yaml"
INSTALL = "apt-get install -y chromium chromium-driver (as root; `make test` runs it when they are missing)"
WAIT = 15.0
REQUEST = 'article.message[data-user="migratebot"]:has(button[data-action="wave_request.approve"])'
ALICE_ONLY = 'article.ephemeral[data-user="migratebot"]'

pytestmark = pytest.mark.slow


def _browser_paths() -> tuple[str, str]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p)
        pytest.fail(
            f"the interactive demo's browser test needs headless Chromium: {missing} not found on PATH — "
            f"install them with: {INSTALL}",
            pytrace=False,
        )
    return chromium, driver


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, driver = _browser_paths()
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    try:
        # Both paths given: Selenium Manager never goes looking for (or downloading) a driver.
        chrome = webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as error:
        pytest.fail(
            f"Chromium ({chromium}) did not start with {driver}: {error.msg} — {INSTALL}", pytrace=False
        )
    chrome.set_page_load_timeout(WAIT)
    yield chrome
    chrome.quit()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[InteractiveDemo]:
    # No engine: the approved wave stays `approved` for the assertion (the CLI runs one).
    with InteractiveDemo(Settings(data_dir=tmp_path), PLAN, engine=False) as running:
        yield running


def wait(browser: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, WAIT, poll_frequency=0.1)


def test_an_sre_requests_the_next_wave_and_a_team_lead_approves_it_from_the_page(
    browser: WebDriver, demo: InteractiveDemo
) -> None:
    browser.get(f"{demo.url}?as=alice")
    assert Select(browser.find_element(By.ID, "as")).first_selected_option.get_attribute("value") == "alice"
    browser.find_element(By.LINK_TEXT, "#eks-migration").click()
    wait(browser).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "main > h2"), "#eks-migration"))

    box = browser.find_element(By.ID, "message")
    box.send_keys("/migrate next-wave", Keys.ENTER)

    request = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, REQUEST)))
    assert "Wave 1 (stateless-web) requested" in request.text
    assert "@alice" in request.text
    answer = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ALICE_ONLY)))
    assert "Only visible to you" in answer.text
    assert "Requested wave 1" in answer.text

    Select(browser.find_element(By.ID, "as")).select_by_value("carol")
    wait(browser).until(lambda b: b.find_element(By.TAG_NAME, "main").get_attribute("data-as") == "carol")
    assert "#eks-migration" in browser.find_element(By.CSS_SELECTOR, "main > h2").text
    assert not browser.find_elements(By.CSS_SELECTOR, ALICE_ONLY), "carol sees alice's ephemeral answer"

    approve = browser.find_element(By.CSS_SELECTOR, f'{REQUEST} button[data-action="wave_request.approve"]')
    approve.click()
    # The bot's button carries a confirm dialog: the page shows it as Slack does.
    alert = wait(browser).until(ec.alert_is_present())
    assert "Approve wave 1?" in alert.text
    alert.accept()

    header = (By.CSS_SELECTOR, 'article.message[data-user="migratebot"] h3.b-header')
    wait(browser).until(ec.text_to_be_present_in_element(header, "approved"))
    message = browser.find_element(By.CSS_SELECTOR, 'article.message[data-user="migratebot"]')
    assert "Wave 1 (stateless-web) approved" in message.text
    assert "(edited)" in message.text
    assert not message.find_elements(By.CSS_SELECTOR, 'button[data-action="wave_request.approve"]')
    carol_sees = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ALICE_ONLY)))
    assert "You approved wave 1" in carol_sees.text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()

    # The App Home: opening it sends app_home_opened (signed); the bot publishes carol's view.
    browser.find_element(By.ID, "open-home").click()
    home = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "section.home .blocks")))
    assert "wave 1 (stateless-web)" in home.text
    assert "approved" in home.text

    waves = {w.index: w for w in demo.bot.repositories.migrations.waves(demo.cluster)}
    assert waves[1].state.value == "approved"
    approvers = [a.user_id for a in demo.bot.repositories.approvals.approvals(waves[1].id)]
    assert approvers == ["U0LEAD0001"]


def test_demo_help_names_the_interactive_page() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--interactive" in result.output
    assert "/ui" in result.output
