#ifndef OPSC_SNMP_NETSNMP_H
#define OPSC_SNMP_NETSNMP_H

/*
 * The one place that includes net-snmp (STYLE.md 4: only src/sources/snmp_trap/
 * may). Its headers are not written for our warning set; the suppression stays
 * local to them.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wundef"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-align"
#if defined(__clang__)
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wdocumentation"
#endif
// clang-format off
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/keytools.h>
#include <net-snmp/library/lcd_time.h>
#include <net-snmp/library/scapi.h>
#include <net-snmp/library/snmp-tc.h>
#include <net-snmp/library/snmp_logging.h>
#include <net-snmp/library/snmp_secmod.h>
#include <net-snmp/library/snmpusm.h>
#include <net-snmp/library/snmpv3.h>
// clang-format on
#pragma GCC diagnostic pop

#endif
