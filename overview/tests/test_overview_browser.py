"""The overview in real Chromium: log in, follow the admin index's link, watch the numbers move as tenants change
state and a job runs, with a screenshot before and after."""

from pathlib import Path

import pytest
from django.core.cache import cache
from selenium.webdriver.remote.webdriver import WebDriver

from accounts.models import User
from archival.services import archive_request
from core.audit import Actor
from percolate_platform.tests.browser import TIMEOUT
from tenants.models import State, TenantState

pytestmark = [pytest.mark.browser]
PASSWORD = "overview-password-123"


def test_overview_numbers_move_live(browser, asgi_server, make_tenant, settings, tmp_path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    settings.OVERVIEW_REFRESH_SECONDS = 0.2
    settings.OVERVIEW_WEBSOCKET_PORT = 0  # one ASGI server serves the page and its socket here
    cache.clear()
    driver: WebDriver = browser
    shots: Path = tmp_path
    wait: WebDriverWait[WebDriver] = WebDriverWait(driver, TIMEOUT)
    User.objects.create_superuser("overview-admin", "overview-admin@example.com", PASSWORD)
    tenants = [make_tenant(tier="A"), make_tenant(tier="A")]

    driver.get(f"http://{asgi_server}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys("overview-admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.element_to_be_clickable((By.LINK_TEXT, "Platform overview"))).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "overview-status"), "live"))

    def cell(name: str) -> str:
        """The cell's text, found again if a push re-rendered the table under us."""
        for _ in range(20):
            try:
                return str(driver.find_element(By.CSS_SELECTOR, f'[data-cell="{name}"]').text)
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"cell {name} kept going stale")

    assert cell("A-cold") == "2" and cell("A-hot") == "0" and cell("jobs-pending") == "0"
    before = shots / "before.png"
    assert driver.save_screenshot(str(before))

    hot = {"state": State.HOT, "pod_id": "127.0.0.1:8201", "tier_deployment": "tier-a"}
    TenantState.objects.filter(tenant=tenants[0]).update(**hot)
    archive_request(tenant_id=tenants[1].id, actor=Actor.system("test:browser"), enqueue=False)
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, '[data-cell="A-hot"]'), "1"))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, '[data-cell="jobs-pending"]'), "1"))
    assert cell("A-cold") == "1"
    assert cell("pod-127.0.0.1:8201") == "1" and cell("cap-127.0.0.1:8201") == "8"
    wait.until(ec.text_to_be_present_in_element((By.ID, "jobs"), str(tenants[1].id)))
    after = shots / "after.png"
    assert driver.save_screenshot(str(after))
    assert before.read_bytes() != after.read_bytes()
