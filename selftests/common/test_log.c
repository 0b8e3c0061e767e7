// SPDX-License-Identifier: MIT
/* The structured log lines: logfmt quoting and JSON a parser takes back. */
#include "hm_test.h"

#include <jansson.h>

#include "common/log.h"

static const char *const view_change[] = {
	"old_view", "1", "new_view", "2", "reason", "request_timeout",
};

HM_TEST(kv_line_has_every_field)
{
	char line[512];

	hm_log_render(line, sizeof(line), HM_LOG_KV, "2026-12-06T07:31:06.123Z", HM_LOG_INFO,
		      "hypermeshd", 0, "view change", view_change, 3);
	ASSERT_TRUE(strcmp(line, "ts=2026-12-06T07:31:06.123Z level=info prog=hypermeshd "
				 "replica=0 msg=\"view change\" old_view=1 new_view=2 "
				 "reason=request_timeout") == 0, line);
}

HM_TEST(kv_quotes_what_is_not_one_word)
{
	const char *kv[] = { "why", "signature crypto failed from 198.18.0.1", "empty", "",
			     "quote", "a \"b\" \\ c\nd" };
	char line[512];

	hm_log_render(line, sizeof(line), HM_LOG_KV, "T", HM_LOG_WARN, "p", -1, "m", kv, 3);
	ASSERT_STRCONTAINS(line, "why=\"signature crypto failed from 198.18.0.1\"", "spaces");
	ASSERT_STRCONTAINS(line, "empty=\"\"", "empty value");
	ASSERT_STRCONTAINS(line, "quote=\"a \\\"b\\\" \\\\ c\\nd\"", "escapes");
	ASSERT_TRUE(strstr(line, "replica=") == NULL, "no id: no replica field");
	ASSERT_TRUE(strchr(line, '\n') == NULL, "one line");
}

HM_TEST(json_line_parses_back)
{
	const char *kv[] = { "old_view", "1", "new_view", "2", "reason", "request timeout",
			     "ratio", "0.250", "hexish", "0x10", "lead0", "007", "ctrl", "a\x01z" };
	char line[512];
	json_error_t e;
	json_t *j;

	hm_log_render(line, sizeof(line), HM_LOG_JSON, "T", HM_LOG_INFO, "hypermeshd", 3,
		      "view change", kv, 7);
	j = json_loads(line, 0, &e);
	ASSERT_TRUE(j != NULL, e.text);
	if (!j)
		return;
	ASSERT_EQ(json_integer_value(json_object_get(j, "replica")), 3, "replica is a number");
	ASSERT_EQ(json_integer_value(json_object_get(j, "new_view")), 2, "a number field");
	ASSERT_TRUE(json_real_value(json_object_get(j, "ratio")) == 0.25, "a real field");
	ASSERT_TRUE(strcmp(json_string_value(json_object_get(j, "reason")), "request timeout") == 0,
		    "a string field");
	ASSERT_TRUE(json_is_string(json_object_get(j, "hexish")), "0x10 stays a string");
	ASSERT_TRUE(json_is_string(json_object_get(j, "lead0")), "007 stays a string");
	ASSERT_TRUE(strcmp(json_string_value(json_object_get(j, "ctrl")), "a\x01z") == 0,
		    "control characters escaped and back");
	ASSERT_TRUE(strcmp(json_string_value(json_object_get(j, "level")), "info") == 0, "level");
	json_decref(j);
}

HM_TEST(truncated_line_stays_terminated)
{
	char line[40];
	size_t n = hm_log_render(line, sizeof(line), HM_LOG_JSON, "T", HM_LOG_INFO, "hypermeshd", 0,
				 "a message far longer than the forty bytes we have", NULL, 0);

	ASSERT_TRUE(n < sizeof(line), "length within the buffer");
	ASSERT_EQ(strlen(line), n, "terminated");
}

HM_TEST(formats_and_levels_parse)
{
	ASSERT_EQ(hm_log_parse_format("kv"), HM_LOG_KV, "kv");
	ASSERT_EQ(hm_log_parse_format("json"), HM_LOG_JSON, "json");
	ASSERT_EQ(hm_log_parse_format("xml"), -1, "unknown format");
	ASSERT_EQ(hm_log_parse_level("debug"), HM_LOG_DEBUG, "debug");
	ASSERT_TRUE(strcmp(HM_KV_U(18446744073709551615ull), "18446744073709551615") == 0,
		    "u64 max");
}

