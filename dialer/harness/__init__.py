"""The SIP softphone test harness: virtual phones on 127.0.0.1 for QA runs of any dialer."""
