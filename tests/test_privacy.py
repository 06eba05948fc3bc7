import logging

from assistant.privacy import MaskingFilter, mask


def test_id_card_and_mobile_numbers_are_masked():
    text = "身份证350203199001011234，手机13812345678，座机0592-1234567"
    out = mask(text)
    assert "350203199001011234" not in out and "350203********1234" in out
    assert "13812345678" not in out and "138****5678" in out
    assert "0592-1234567" in out  # not a personal mobile number


def test_log_records_are_masked(caplog):
    log = logging.getLogger("test.privacy")
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    log.addHandler(handler)
    caplog.handler.addFilter(MaskingFilter())
    log.warning("user %s gave phone %s", "u1", "13912345678")
    assert "13912345678" not in caplog.text and "139****5678" in caplog.text
