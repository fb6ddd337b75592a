"""Writes on devices: register (validated Ed25519 and X25519 keys) and revoke, each with an audit row."""

import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_write
from core.errors import Conflict, InvalidInput, NotFound
from tenants.device_keys import normalize_encryption_key, normalize_signing_key
from tenants.events import device_changed
from tenants.models import Device, DevicePlatform, Tenant, TenantStatus


def device_register(
    *,
    tenant_id: uuid.UUID | str,
    device_name: object,
    platform: object,
    public_key_signing: object,
    public_key_encryption: object,
    actor: Actor,
) -> Device:
    errors: dict[str, list[str]] = {}
    if not isinstance(device_name, str) or not device_name.strip() or len(device_name) > 255:
        errors["device_name"] = ["Required, at most 255 characters."]
    if platform not in DevicePlatform.values:
        errors["platform"] = [f"Must be one of {', '.join(DevicePlatform.values)}."]
    signing = encryption = ""
    try:
        signing = normalize_signing_key(public_key_signing)
    except ValueError as exc:
        errors["public_key_signing"] = [str(exc)]
    try:
        encryption = normalize_encryption_key(public_key_encryption)
    except ValueError as exc:
        errors["public_key_encryption"] = [str(exc)]
    if errors:
        raise InvalidInput("invalid device", fields=errors)
    try:
        with transaction.atomic():
            try:
                tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
            except (Tenant.DoesNotExist, ValidationError, ValueError) as exc:
                raise NotFound(f"tenant {tenant_id} does not exist") from exc
            if tenant.status != TenantStatus.ACTIVE:
                raise Conflict(f"tenant {tenant.id} is {tenant.status}; devices can only be added to active tenants")
            device = Device.objects.create(
                tenant=tenant,
                device_name=str(device_name).strip(),
                platform=str(platform),
                public_key_signing=signing,
                public_key_encryption=encryption,
            )
            audit_write(
                actor=actor,
                action="device.registered",
                tenant=tenant,
                resource_type="device",
                resource_id=device.id,
                metadata={"device_name": device.device_name, "platform": platform},
            )
    except IntegrityError as exc:
        raise Conflict(
            "this signing key is already registered", fields={"public_key_signing": ["Already registered."]}
        ) from exc
    return device


def device_revoke(*, device_id: uuid.UUID | str, actor: Actor) -> Device:
    with transaction.atomic():
        try:
            device = Device.objects.select_for_update().select_related("tenant").get(pk=device_id)
        except (Device.DoesNotExist, ValidationError, ValueError) as exc:
            raise NotFound(f"device {device_id} does not exist") from exc
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.save(update_fields=["revoked_at"])
            device_changed(device.id)
            audit_write(
                actor=actor,
                action="device.revoked",
                tenant=device.tenant,
                resource_type="device",
                resource_id=device.id,
                metadata={"device_name": device.device_name},
            )
    return device
