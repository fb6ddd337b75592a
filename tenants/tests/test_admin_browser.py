"""One real headless-browser run through the admin: log in, find a tenant by email, suspend it, see the audit row.

Drives Debian's /usr/bin/chromium through /usr/bin/chromedriver (`scripts/services.sh chromium` installs both). A
missing browser is a failure, not a skip: this test is the proof that the admin works for a person.
"""

import urllib.request

import pytest
from django.conf import settings
from pytest_django.live_server_helper import LiveServer
from selenium.webdriver.remote.webdriver import WebDriver

from accounts.models import User
from core.audit import Actor
from percolate_platform.tests.browser import TIMEOUT
from tenants.models import AuditLog, Tenant, TenantStatus
from tenants.services import tenant_provision

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-password-123"


def test_admin_login_search_suspend_and_audit_row(browser: WebDriver, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    wait: WebDriverWait[WebDriver] = WebDriverWait(driver, TIMEOUT)
    base = live_server.url
    User.objects.create_superuser("browser-admin", "browser-admin@example.com", PASSWORD)
    actor = Actor(label="test:browser")
    target = tenant_provision(email="findme.browser@example.com", tier="B", actor=actor)
    tenant_provision(email="someone.else@example.com", tier="B", actor=actor)

    # The admin's static files are served by the live server (the pages are styled).
    css_url = f"{base}{settings.STATIC_URL if settings.STATIC_URL.startswith('/') else '/' + settings.STATIC_URL}"
    with urllib.request.urlopen(f"{css_url}admin/css/base.css", timeout=TIMEOUT) as response:
        assert response.status == 200

    # Log in with a real password.
    driver.get(f"{base}/admin/login/?next=/admin/tenants/tenant/")
    driver.find_element(By.ID, "id_username").send_keys("browser-admin")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#login-form input[type=submit]").click()
    searchbar = wait.until(ec.presence_of_element_located((By.ID, "searchbar")))

    # Search by email prefix (in another letter case), select the tenant, run the suspend action.
    searchbar.send_keys("FindMe.")
    driver.find_element(By.CSS_SELECTOR, "#changelist-search input[type=submit]").click()
    wait.until(ec.staleness_of(searchbar))  # the unfiltered list lists the tenant too: wait for the search's page
    checkbox = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f"input[name=_selected_action][value='{target.pk}']"))
    )
    rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert "findme.browser@example.com" in rows[0].text
    checkbox.click()
    Select(driver.find_element(By.NAME, "action")).select_by_value("suspend_tenants")
    driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    message = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist li.success")))
    assert "1 suspended." in message.text

    target.refresh_from_db()
    assert target.status == TenantStatus.SUSPENDED

    # The audit log page, searched by the tenant's id, shows the suspension by this admin from this address.
    driver.get(f"{base}/admin/tenants/auditlog/?q={target.pk}")
    table = wait.until(ec.presence_of_element_located((By.ID, "result_list")))
    assert "tenant.suspended" in table.text
    assert "user:browser-admin" in table.text
    row = AuditLog.objects.get(tenant=target, action="tenant.suspended")
    assert row.actor == "user:browser-admin"
    assert row.ip_address == "127.0.0.1"
    assert "127.0.0.1" in table.text

    # ...and the page is the styled admin (its stylesheet loaded in the browser).
    color = driver.execute_script("return getComputedStyle(document.getElementById('header')).backgroundColor")
    assert color not in ("", "rgba(0, 0, 0, 0)", "transparent")
    assert Tenant.objects.get(email="someone.else@example.com").status == TenantStatus.ACTIVE
