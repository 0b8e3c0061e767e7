// SPDX-License-Identifier: MIT
/* The drop counters as bpftool shows them: struct hm_drop_counters in the
 * XDP object's BTF names every counter as hm_drop_reason_name() does, in
 * enum order, at the offset hm_drops() indexes. */
#include <bpf/btf.h>
#include <stddef.h>

#include "hm_test.h"
#include "hm_maps.h"
#include "common/wire.h"

#define XDP_OBJ "build/hm_xdp.bpf.o"

HM_TEST(btf_names_every_drop_reason)
{
	struct btf *btf = btf__parse(XDP_OBJ, NULL);
	const struct btf_type *t;
	const struct btf_member *m;
	int id;

	if (!ASSERT_TRUE(btf != NULL, "BTF of " XDP_OBJ " (run from the repository, after make)"))
		return;
	id = btf__find_by_name_kind(btf, "hm_drop_counters", BTF_KIND_STRUCT);
	if (!ASSERT_TRUE(id > 0, "struct hm_drop_counters in the program's BTF")) {
		btf__free(btf);
		return;
	}
	t = btf__type_by_id(btf, (__u32)id);
	ASSERT_EQ(btf_vlen(t), HM_DROP_REASON_MAX, "one field per reason");
	m = btf_members(t);
	for (unsigned r = 0; r < btf_vlen(t) && r < HM_DROP_REASON_MAX; r++, m++) {
		const char *name = btf__name_by_offset(btf, m->name_off);

		ASSERT_TRUE(name && strcmp(name, hm_drop_reason_name(r)) == 0, hm_drop_reason_name(r));
		ASSERT_EQ(btf_member_bit_offset(t, r), r * 64, "at hm_drops()[reason]");
	}
	btf__free(btf);
}

HM_TEST(hm_drops_indexes_by_reason)
{
	struct hm_node_stats st = { 0 };

	hm_drops(st.drops)[HM_DROP_BAD_MAC] = 7;
	hm_drops(st.drops)[HM_DROP_EQUIVOCATION] = 9;
	ASSERT_EQ(st.drops.bad_mac, 7, "bad_mac");
	ASSERT_EQ(st.drops.equivocation, 9, "equivocation");
	ASSERT_EQ(offsetof(struct hm_drop_counters, stale), HM_DROP_STALE * 8, "stale");
}
