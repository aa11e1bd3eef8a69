"""Numbers of the BPF ABI that a compiled object holds as bare integers: helper
ids (enum bpf_func_id) and map types (enum bpf_map_type), from
include/uapi/linux/bpf.h. Both enums are only ever appended to, so one table
serves every kernel. Helpers: generated from libbpf 1.1's bpf_helper_defs.h
(211 = bpf_cgrp_storage_delete, the last helper: new kernel features are kfuncs)."""

from __future__ import annotations

#: HELPERS[id - 1] is the helper called as `call id`; the kernel's enum
#: bpf_func_id spells it BPF_FUNC_<name without "bpf_">.
HELPERS: tuple[str, ...] = (
    "bpf_map_lookup_elem",
    "bpf_map_update_elem",
    "bpf_map_delete_elem",  # 1
    "bpf_probe_read",
    "bpf_ktime_get_ns",
    "bpf_trace_printk",  # 4
    "bpf_get_prandom_u32",
    "bpf_get_smp_processor_id",
    "bpf_skb_store_bytes",  # 7
    "bpf_l3_csum_replace",
    "bpf_l4_csum_replace",
    "bpf_tail_call",  # 10
    "bpf_clone_redirect",
    "bpf_get_current_pid_tgid",
    "bpf_get_current_uid_gid",  # 13
    "bpf_get_current_comm",
    "bpf_get_cgroup_classid",
    "bpf_skb_vlan_push",  # 16
    "bpf_skb_vlan_pop",
    "bpf_skb_get_tunnel_key",
    "bpf_skb_set_tunnel_key",  # 19
    "bpf_perf_event_read",
    "bpf_redirect",
    "bpf_get_route_realm",  # 22
    "bpf_perf_event_output",
    "bpf_skb_load_bytes",
    "bpf_get_stackid",  # 25
    "bpf_csum_diff",
    "bpf_skb_get_tunnel_opt",
    "bpf_skb_set_tunnel_opt",  # 28
    "bpf_skb_change_proto",
    "bpf_skb_change_type",
    "bpf_skb_under_cgroup",  # 31
    "bpf_get_hash_recalc",
    "bpf_get_current_task",
    "bpf_probe_write_user",  # 34
    "bpf_current_task_under_cgroup",
    "bpf_skb_change_tail",
    "bpf_skb_pull_data",  # 37
    "bpf_csum_update",
    "bpf_set_hash_invalid",
    "bpf_get_numa_node_id",  # 40
    "bpf_skb_change_head",
    "bpf_xdp_adjust_head",
    "bpf_probe_read_str",  # 43
    "bpf_get_socket_cookie",
    "bpf_get_socket_uid",
    "bpf_set_hash",  # 46
    "bpf_setsockopt",
    "bpf_skb_adjust_room",
    "bpf_redirect_map",  # 49
    "bpf_sk_redirect_map",
    "bpf_sock_map_update",
    "bpf_xdp_adjust_meta",  # 52
    "bpf_perf_event_read_value",
    "bpf_perf_prog_read_value",
    "bpf_getsockopt",  # 55
    "bpf_override_return",
    "bpf_sock_ops_cb_flags_set",
    "bpf_msg_redirect_map",  # 58
    "bpf_msg_apply_bytes",
    "bpf_msg_cork_bytes",
    "bpf_msg_pull_data",  # 61
    "bpf_bind",
    "bpf_xdp_adjust_tail",
    "bpf_skb_get_xfrm_state",  # 64
    "bpf_get_stack",
    "bpf_skb_load_bytes_relative",
    "bpf_fib_lookup",  # 67
    "bpf_sock_hash_update",
    "bpf_msg_redirect_hash",
    "bpf_sk_redirect_hash",  # 70
    "bpf_lwt_push_encap",
    "bpf_lwt_seg6_store_bytes",
    "bpf_lwt_seg6_adjust_srh",  # 73
    "bpf_lwt_seg6_action",
    "bpf_rc_repeat",
    "bpf_rc_keydown",  # 76
    "bpf_skb_cgroup_id",
    "bpf_get_current_cgroup_id",
    "bpf_get_local_storage",  # 79
    "bpf_sk_select_reuseport",
    "bpf_skb_ancestor_cgroup_id",
    "bpf_sk_lookup_tcp",  # 82
    "bpf_sk_lookup_udp",
    "bpf_sk_release",
    "bpf_map_push_elem",  # 85
    "bpf_map_pop_elem",
    "bpf_map_peek_elem",
    "bpf_msg_push_data",  # 88
    "bpf_msg_pop_data",
    "bpf_rc_pointer_rel",
    "bpf_spin_lock",  # 91
    "bpf_spin_unlock",
    "bpf_sk_fullsock",
    "bpf_tcp_sock",  # 94
    "bpf_skb_ecn_set_ce",
    "bpf_get_listener_sock",
    "bpf_skc_lookup_tcp",  # 97
    "bpf_tcp_check_syncookie",
    "bpf_sysctl_get_name",
    "bpf_sysctl_get_current_value",  # 100
    "bpf_sysctl_get_new_value",
    "bpf_sysctl_set_new_value",
    "bpf_strtol",  # 103
    "bpf_strtoul",
    "bpf_sk_storage_get",
    "bpf_sk_storage_delete",  # 106
    "bpf_send_signal",
    "bpf_tcp_gen_syncookie",
    "bpf_skb_output",  # 109
    "bpf_probe_read_user",
    "bpf_probe_read_kernel",
    "bpf_probe_read_user_str",  # 112
    "bpf_probe_read_kernel_str",
    "bpf_tcp_send_ack",
    "bpf_send_signal_thread",  # 115
    "bpf_jiffies64",
    "bpf_read_branch_records",
    "bpf_get_ns_current_pid_tgid",  # 118
    "bpf_xdp_output",
    "bpf_get_netns_cookie",
    "bpf_get_current_ancestor_cgroup_id",  # 121
    "bpf_sk_assign",
    "bpf_ktime_get_boot_ns",
    "bpf_seq_printf",  # 124
    "bpf_seq_write",
    "bpf_sk_cgroup_id",
    "bpf_sk_ancestor_cgroup_id",  # 127
    "bpf_ringbuf_output",
    "bpf_ringbuf_reserve",
    "bpf_ringbuf_submit",  # 130
    "bpf_ringbuf_discard",
    "bpf_ringbuf_query",
    "bpf_csum_level",  # 133
    "bpf_skc_to_tcp6_sock",
    "bpf_skc_to_tcp_sock",
    "bpf_skc_to_tcp_timewait_sock",  # 136
    "bpf_skc_to_tcp_request_sock",
    "bpf_skc_to_udp6_sock",
    "bpf_get_task_stack",  # 139
    "bpf_load_hdr_opt",
    "bpf_store_hdr_opt",
    "bpf_reserve_hdr_opt",  # 142
    "bpf_inode_storage_get",
    "bpf_inode_storage_delete",
    "bpf_d_path",  # 145
    "bpf_copy_from_user",
    "bpf_snprintf_btf",
    "bpf_seq_printf_btf",  # 148
    "bpf_skb_cgroup_classid",
    "bpf_redirect_neigh",
    "bpf_per_cpu_ptr",  # 151
    "bpf_this_cpu_ptr",
    "bpf_redirect_peer",
    "bpf_task_storage_get",  # 154
    "bpf_task_storage_delete",
    "bpf_get_current_task_btf",
    "bpf_bprm_opts_set",  # 157
    "bpf_ktime_get_coarse_ns",
    "bpf_ima_inode_hash",
    "bpf_sock_from_file",  # 160
    "bpf_check_mtu",
    "bpf_for_each_map_elem",
    "bpf_snprintf",  # 163
    "bpf_sys_bpf",
    "bpf_btf_find_by_name_kind",
    "bpf_sys_close",  # 166
    "bpf_timer_init",
    "bpf_timer_set_callback",
    "bpf_timer_start",  # 169
    "bpf_timer_cancel",
    "bpf_get_func_ip",
    "bpf_get_attach_cookie",  # 172
    "bpf_task_pt_regs",
    "bpf_get_branch_snapshot",
    "bpf_trace_vprintk",  # 175
    "bpf_skc_to_unix_sock",
    "bpf_kallsyms_lookup_name",
    "bpf_find_vma",  # 178
    "bpf_loop",
    "bpf_strncmp",
    "bpf_get_func_arg",  # 181
    "bpf_get_func_ret",
    "bpf_get_func_arg_cnt",
    "bpf_get_retval",  # 184
    "bpf_set_retval",
    "bpf_xdp_get_buff_len",
    "bpf_xdp_load_bytes",  # 187
    "bpf_xdp_store_bytes",
    "bpf_copy_from_user_task",
    "bpf_skb_set_tstamp",  # 190
    "bpf_ima_file_hash",
    "bpf_kptr_xchg",
    "bpf_map_lookup_percpu_elem",  # 193
    "bpf_skc_to_mptcp_sock",
    "bpf_dynptr_from_mem",
    "bpf_ringbuf_reserve_dynptr",  # 196
    "bpf_ringbuf_submit_dynptr",
    "bpf_ringbuf_discard_dynptr",
    "bpf_dynptr_read",  # 199
    "bpf_dynptr_write",
    "bpf_dynptr_data",
    "bpf_tcp_raw_gen_syncookie_ipv4",  # 202
    "bpf_tcp_raw_gen_syncookie_ipv6",
    "bpf_tcp_raw_check_syncookie_ipv4",
    "bpf_tcp_raw_check_syncookie_ipv6",  # 205
    "bpf_ktime_get_tai_ns",
    "bpf_user_ringbuf_drain",
    "bpf_cgrp_storage_get",  # 208
    "bpf_cgrp_storage_delete",  # 211
)


#: MAP_TYPES[n] is the enum bpf_map_type enumerator with value n.
MAP_TYPES: tuple[str, ...] = (
    "BPF_MAP_TYPE_UNSPEC",
    "BPF_MAP_TYPE_HASH",
    "BPF_MAP_TYPE_ARRAY",  # 0
    "BPF_MAP_TYPE_PROG_ARRAY",
    "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
    "BPF_MAP_TYPE_PERCPU_HASH",  # 3
    "BPF_MAP_TYPE_PERCPU_ARRAY",
    "BPF_MAP_TYPE_STACK_TRACE",
    "BPF_MAP_TYPE_CGROUP_ARRAY",  # 6
    "BPF_MAP_TYPE_LRU_HASH",
    "BPF_MAP_TYPE_LRU_PERCPU_HASH",
    "BPF_MAP_TYPE_LPM_TRIE",  # 9
    "BPF_MAP_TYPE_ARRAY_OF_MAPS",
    "BPF_MAP_TYPE_HASH_OF_MAPS",
    "BPF_MAP_TYPE_DEVMAP",  # 12
    "BPF_MAP_TYPE_SOCKMAP",
    "BPF_MAP_TYPE_CPUMAP",
    "BPF_MAP_TYPE_XSKMAP",  # 15
    "BPF_MAP_TYPE_SOCKHASH",
    "BPF_MAP_TYPE_CGROUP_STORAGE",
    "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY",  # 18
    "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE",
    "BPF_MAP_TYPE_QUEUE",
    "BPF_MAP_TYPE_STACK",  # 21
    "BPF_MAP_TYPE_SK_STORAGE",
    "BPF_MAP_TYPE_DEVMAP_HASH",
    "BPF_MAP_TYPE_STRUCT_OPS",  # 24
    "BPF_MAP_TYPE_RINGBUF",
    "BPF_MAP_TYPE_INODE_STORAGE",
    "BPF_MAP_TYPE_TASK_STORAGE",  # 27
    "BPF_MAP_TYPE_BLOOM_FILTER",
    "BPF_MAP_TYPE_USER_RINGBUF",
    "BPF_MAP_TYPE_CGRP_STORAGE",  # 30
    "BPF_MAP_TYPE_ARENA",  # 33
)


def map_type_name(map_type: int) -> str | None:
    """ "BPF_MAP_TYPE_RINGBUF" for 27; None for unknown numbers."""
    if 0 <= map_type < len(MAP_TYPES):
        return MAP_TYPES[map_type]
    return None


def helper_name(helper_id: int) -> str | None:
    """ "bpf_map_lookup_elem" for 1; None for 0 (unspec) and unknown ids."""
    if 1 <= helper_id <= len(HELPERS):
        return HELPERS[helper_id - 1]
    return None
