/*
 * The built-in MIB name table.
 *
 * Debian ships no IETF MIB files (only net-snmp's own), so `snmptranslate
 * IF-MIB::ifIndex` fails on a stock machine. The server therefore carries
 * the standard names operators meet every day: SNMPv2-MIB, the snmpTraps,
 * SNMP-COMMUNITY-MIB's trap address/community, IF-MIB, ENTITY-MIB and
 * ENTITY-STATE-MIB, BGP4-MIB (RFC 1657 and RFC 4273 notifications), OSPF
 * (RFC 1850 traps and the objects they carry), RMON alarms, BRIDGE-MIB
 * topology, VRRP, UPS-MIB (RFC 1628), DISMAN-EVENT-MIB triggers (what snmpd's
 * monitors send) and net-snmp's own start/stop notifications. Anything else
 * is shown as a numeric OID, or "SNMPv2-SMI::enterprises.N..." under the
 * enterprises node.
 *
 * The table is kept in OID order in the source (a unit test checks it), so
 * lookups are a binary search. Longest-prefix matching follows a parent
 * chain computed once: the greatest entry <= the OID lies inside the subtree
 * of every table entry that is a prefix of the OID, so walking its ancestors
 * finds the longest one. A by-name index is sorted once as well.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "normalize_int.h"
#include "opsc/buf.h"
#include "opsc/error.h"
#include "opsc/normalize.h"

/* ---- enumerations ------------------------------------------------------------------------- */

static const opsc_mib_enum_t en_enabled[] = {{1, "enabled"}, {2, "disabled"}, {0, NULL}};
static const opsc_mib_enum_t en_truth[] = {{1, "true"}, {2, "false"}, {0, NULL}};
static const opsc_mib_enum_t en_if_admin[] = {{1, "up"}, {2, "down"}, {3, "testing"}, {0, NULL}};
static const opsc_mib_enum_t en_if_oper[] = {
    {1, "up"},      {2, "down"},       {3, "testing"},        {4, "unknown"},
    {5, "dormant"}, {6, "notPresent"}, {7, "lowerLayerDown"}, {0, NULL}};
static const opsc_mib_enum_t en_if_type[] = {{1, "other"},
                                             {6, "ethernetCsmacd"},
                                             {7, "iso88023Csmacd"},
                                             {15, "fddi"},
                                             {18, "ds1"},
                                             {19, "e1"},
                                             {20, "basicISDN"},
                                             {21, "primaryISDN"},
                                             {22, "propPointToPointSerial"},
                                             {23, "ppp"},
                                             {24, "softwareLoopback"},
                                             {30, "ds3"},
                                             {32, "frameRelay"},
                                             {33, "rs232"},
                                             {37, "atm"},
                                             {39, "sonet"},
                                             {53, "propVirtual"},
                                             {71, "ieee80211"},
                                             {117, "gigabitEthernet"},
                                             {131, "tunnel"},
                                             {135, "l2vlan"},
                                             {136, "l3ipvlan"},
                                             {161, "ieee8023adLag"},
                                             {166, "mpls"},
                                             {209, "bridge"},
                                             {0, NULL}};
static const opsc_mib_enum_t en_ent_class[] = {
    {1, "other"},         {2, "unknown"},     {3, "chassis"},       {4, "backplane"},
    {5, "container"},     {6, "powerSupply"}, {7, "fan"},           {8, "sensor"},
    {9, "module"},        {10, "port"},       {11, "stack"},        {12, "cpu"},
    {13, "energyObject"}, {14, "battery"},    {15, "storageDrive"}, {0, NULL}};
static const opsc_mib_enum_t en_ent_admin[] = {
    {1, "unknown"}, {2, "locked"}, {3, "shuttingDown"}, {4, "unlocked"}, {0, NULL}};
static const opsc_mib_enum_t en_ent_oper[] = {
    {1, "unknown"}, {2, "disabled"}, {3, "enabled"}, {4, "testing"}, {0, NULL}};
static const opsc_mib_enum_t en_ent_usage[] = {
    {1, "unknown"}, {2, "idle"}, {3, "active"}, {4, "busy"}, {0, NULL}};
static const opsc_mib_enum_t en_ent_standby[] = {
    {1, "unknown"}, {2, "hotStandby"}, {3, "coldStandby"}, {4, "providingService"}, {0, NULL}};
static const opsc_mib_enum_t en_bgp_state[] = {
    {1, "idle"},        {2, "connect"},     {3, "active"}, {4, "opensent"},
    {5, "openconfirm"}, {6, "established"}, {0, NULL}};
static const opsc_mib_enum_t en_bgp_admin[] = {{1, "stop"}, {2, "start"}, {0, NULL}};
static const opsc_mib_enum_t en_ospf_if_state[] = {{1, "down"},
                                                   {2, "loopback"},
                                                   {3, "waiting"},
                                                   {4, "pointToPoint"},
                                                   {5, "designatedRouter"},
                                                   {6, "backupDesignatedRouter"},
                                                   {7, "otherDesignatedRouter"},
                                                   {0, NULL}};
static const opsc_mib_enum_t en_ospf_nbr_state[] = {
    {1, "down"},     {2, "attempt"}, {3, "init"}, {4, "twoWay"}, {5, "exchangeStart"},
    {6, "exchange"}, {7, "loading"}, {8, "full"}, {0, NULL}};
static const opsc_mib_enum_t en_ospf_packet[] = {{1, "hello"},    {2, "dbDescript"}, {3, "lsReq"},
                                                 {4, "lsUpdate"}, {5, "lsAck"},      {0, NULL}};
static const opsc_mib_enum_t en_rmon_sample[] = {
    {1, "absoluteValue"}, {2, "deltaValue"}, {0, NULL}};
static const opsc_mib_enum_t en_ups_battery[] = {
    {1, "unknown"}, {2, "batteryNormal"}, {3, "batteryLow"}, {4, "batteryDepleted"}, {0, NULL}};
static const opsc_mib_enum_t en_ups_output[] = {{1, "other"},   {2, "none"},    {3, "normal"},
                                                {4, "bypass"},  {5, "battery"}, {6, "booster"},
                                                {7, "reducer"}, {0, NULL}};
static const opsc_mib_enum_t en_ups_test[] = {
    {1, "donePass"},   {2, "doneWarning"},      {3, "doneError"}, {4, "aborted"},
    {5, "inProgress"}, {6, "noTestsInitiated"}, {0, NULL}};

/* ---- the table, in OID order -------------------------------------------------------------- */

#define OPSC__OIDLEN(...) ((uint32_t)(sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t)))
#define E(kind, mod, nm, en, ...)                                                                  \
    {                                                                                              \
        mod, nm, kind, en, OPSC__OIDLEN(__VA_ARGS__), {                                            \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define N(mod, nm, ...) E(OPSC_MIB_NODE, mod, nm, NULL, __VA_ARGS__)
#define S(mod, nm, en, ...) E(OPSC_MIB_SCALAR, mod, nm, en, __VA_ARGS__)
#define C(mod, nm, en, ...) E(OPSC_MIB_COLUMN, mod, nm, en, __VA_ARGS__)
#define T(mod, nm, ...) E(OPSC_MIB_NOTIFICATION, mod, nm, NULL, __VA_ARGS__)
#define I(mod, nm, ...) E(OPSC_MIB_IDENTITY, mod, nm, NULL, __VA_ARGS__)

#define MIB2 1, 3, 6, 1, 2, 1
#define SYS MIB2, 1
#define IFE MIB2, 2, 2, 1
#define OSPF MIB2, 14
#define BGP MIB2, 15
#define BGPPEER BGP, 3, 1
#define RMONALARM MIB2, 16, 3, 1, 1
#define IFX MIB2, 31, 1, 1, 1
#define UPS MIB2, 33
#define UPSALARM UPS, 1, 6, 3
#define ENTPHY MIB2, 47, 1, 1, 1, 1
#define MTE MIB2, 88, 2
#define ENTSTATE MIB2, 131
#define SNMPTRAPS 1, 3, 6, 1, 6, 3, 1, 1, 5

static const opsc_mib_name_t g_names[] = {
    N("SNMPv2-SMI", "mib-2", MIB2),
    S("SNMPv2-MIB", "sysDescr", NULL, SYS, 1),
    S("SNMPv2-MIB", "sysObjectID", NULL, SYS, 2),
    S("SNMPv2-MIB", "sysUpTime", NULL, SYS, 3),
    S("SNMPv2-MIB", "sysContact", NULL, SYS, 4),
    S("SNMPv2-MIB", "sysName", NULL, SYS, 5),
    S("SNMPv2-MIB", "sysLocation", NULL, SYS, 6),
    S("SNMPv2-MIB", "sysServices", NULL, SYS, 7),
    S("SNMPv2-MIB", "sysORLastChange", NULL, SYS, 8),
    C("SNMPv2-MIB", "sysORIndex", NULL, SYS, 9, 1, 1),
    C("SNMPv2-MIB", "sysORID", NULL, SYS, 9, 1, 2),
    C("SNMPv2-MIB", "sysORDescr", NULL, SYS, 9, 1, 3),
    C("SNMPv2-MIB", "sysORUpTime", NULL, SYS, 9, 1, 4),
    S("IF-MIB", "ifNumber", NULL, MIB2, 2, 1),
    C("IF-MIB", "ifIndex", NULL, IFE, 1),
    C("IF-MIB", "ifDescr", NULL, IFE, 2),
    C("IF-MIB", "ifType", en_if_type, IFE, 3),
    C("IF-MIB", "ifMtu", NULL, IFE, 4),
    C("IF-MIB", "ifSpeed", NULL, IFE, 5),
    C("IF-MIB", "ifPhysAddress", NULL, IFE, 6),
    C("IF-MIB", "ifAdminStatus", en_if_admin, IFE, 7),
    C("IF-MIB", "ifOperStatus", en_if_oper, IFE, 8),
    C("IF-MIB", "ifLastChange", NULL, IFE, 9),
    C("IF-MIB", "ifInOctets", NULL, IFE, 10),
    C("IF-MIB", "ifInUcastPkts", NULL, IFE, 11),
    C("IF-MIB", "ifInNUcastPkts", NULL, IFE, 12),
    C("IF-MIB", "ifInDiscards", NULL, IFE, 13),
    C("IF-MIB", "ifInErrors", NULL, IFE, 14),
    C("IF-MIB", "ifInUnknownProtos", NULL, IFE, 15),
    C("IF-MIB", "ifOutOctets", NULL, IFE, 16),
    C("IF-MIB", "ifOutUcastPkts", NULL, IFE, 17),
    C("IF-MIB", "ifOutNUcastPkts", NULL, IFE, 18),
    C("IF-MIB", "ifOutDiscards", NULL, IFE, 19),
    C("IF-MIB", "ifOutErrors", NULL, IFE, 20),
    C("IF-MIB", "ifOutQLen", NULL, IFE, 21),
    C("IF-MIB", "ifSpecific", NULL, IFE, 22),
    S("SNMPv2-MIB", "snmpEnableAuthenTraps", en_enabled, MIB2, 11, 30),
    S("OSPF-MIB", "ospfRouterId", NULL, OSPF, 1, 1),
    C("OSPF-MIB", "ospfIfIpAddress", NULL, OSPF, 7, 1, 1),
    C("OSPF-MIB", "ospfAddressLessIf", NULL, OSPF, 7, 1, 2),
    C("OSPF-MIB", "ospfIfState", en_ospf_if_state, OSPF, 7, 1, 12),
    C("OSPF-MIB", "ospfNbrIpAddr", NULL, OSPF, 10, 1, 1),
    C("OSPF-MIB", "ospfNbrAddressLessIndex", NULL, OSPF, 10, 1, 2),
    C("OSPF-MIB", "ospfNbrRtrId", NULL, OSPF, 10, 1, 3),
    C("OSPF-MIB", "ospfNbrState", en_ospf_nbr_state, OSPF, 10, 1, 6),
    C("OSPF-MIB", "ospfVirtNbrArea", NULL, OSPF, 11, 1, 1),
    C("OSPF-MIB", "ospfVirtNbrRtrId", NULL, OSPF, 11, 1, 2),
    C("OSPF-MIB", "ospfVirtNbrState", en_ospf_nbr_state, OSPF, 11, 1, 5),
    S("OSPF-TRAP-MIB", "ospfSetTrap", NULL, OSPF, 16, 1, 1),
    S("OSPF-TRAP-MIB", "ospfConfigErrorType", NULL, OSPF, 16, 1, 2),
    S("OSPF-TRAP-MIB", "ospfPacketType", en_ospf_packet, OSPF, 16, 1, 3),
    S("OSPF-TRAP-MIB", "ospfPacketSrc", NULL, OSPF, 16, 1, 4),
    T("OSPF-TRAP-MIB", "ospfVirtIfStateChange", OSPF, 16, 2, 1),
    T("OSPF-TRAP-MIB", "ospfNbrStateChange", OSPF, 16, 2, 2),
    T("OSPF-TRAP-MIB", "ospfVirtNbrStateChange", OSPF, 16, 2, 3),
    T("OSPF-TRAP-MIB", "ospfIfConfigError", OSPF, 16, 2, 4),
    T("OSPF-TRAP-MIB", "ospfVirtIfConfigError", OSPF, 16, 2, 5),
    T("OSPF-TRAP-MIB", "ospfIfAuthFailure", OSPF, 16, 2, 6),
    T("OSPF-TRAP-MIB", "ospfVirtIfAuthFailure", OSPF, 16, 2, 7),
    T("OSPF-TRAP-MIB", "ospfIfRxBadPacket", OSPF, 16, 2, 8),
    T("OSPF-TRAP-MIB", "ospfVirtIfRxBadPacket", OSPF, 16, 2, 9),
    T("OSPF-TRAP-MIB", "ospfTxRetransmit", OSPF, 16, 2, 10),
    T("OSPF-TRAP-MIB", "ospfVirtIfTxRetransmit", OSPF, 16, 2, 11),
    T("OSPF-TRAP-MIB", "ospfOriginateLsa", OSPF, 16, 2, 12),
    T("OSPF-TRAP-MIB", "ospfMaxAgeLsa", OSPF, 16, 2, 13),
    T("OSPF-TRAP-MIB", "ospfLsdbOverflow", OSPF, 16, 2, 14),
    T("OSPF-TRAP-MIB", "ospfLsdbApproachingOverflow", OSPF, 16, 2, 15),
    T("OSPF-TRAP-MIB", "ospfIfStateChange", OSPF, 16, 2, 16),
    T("BGP4-MIB", "bgpEstablishedNotification", BGP, 0, 1),
    T("BGP4-MIB", "bgpBackwardTransNotification", BGP, 0, 2),
    S("BGP4-MIB", "bgpVersion", NULL, BGP, 1),
    S("BGP4-MIB", "bgpLocalAs", NULL, BGP, 2),
    C("BGP4-MIB", "bgpPeerIdentifier", NULL, BGPPEER, 1),
    C("BGP4-MIB", "bgpPeerState", en_bgp_state, BGPPEER, 2),
    C("BGP4-MIB", "bgpPeerAdminStatus", en_bgp_admin, BGPPEER, 3),
    C("BGP4-MIB", "bgpPeerNegotiatedVersion", NULL, BGPPEER, 4),
    C("BGP4-MIB", "bgpPeerLocalAddr", NULL, BGPPEER, 5),
    C("BGP4-MIB", "bgpPeerLocalPort", NULL, BGPPEER, 6),
    C("BGP4-MIB", "bgpPeerRemoteAddr", NULL, BGPPEER, 7),
    C("BGP4-MIB", "bgpPeerRemotePort", NULL, BGPPEER, 8),
    C("BGP4-MIB", "bgpPeerRemoteAs", NULL, BGPPEER, 9),
    C("BGP4-MIB", "bgpPeerInUpdates", NULL, BGPPEER, 10),
    C("BGP4-MIB", "bgpPeerOutUpdates", NULL, BGPPEER, 11),
    C("BGP4-MIB", "bgpPeerInTotalMessages", NULL, BGPPEER, 12),
    C("BGP4-MIB", "bgpPeerOutTotalMessages", NULL, BGPPEER, 13),
    C("BGP4-MIB", "bgpPeerLastError", NULL, BGPPEER, 14),
    C("BGP4-MIB", "bgpPeerFsmEstablishedTransitions", NULL, BGPPEER, 15),
    C("BGP4-MIB", "bgpPeerFsmEstablishedTime", NULL, BGPPEER, 16),
    S("BGP4-MIB", "bgpIdentifier", NULL, BGP, 4),
    N("BGP4-MIB", "bgpTraps", BGP, 7),
    T("BGP4-MIB", "bgpEstablished", BGP, 7, 1),
    T("BGP4-MIB", "bgpBackwardTransition", BGP, 7, 2),
    T("RMON-MIB", "risingAlarm", MIB2, 16, 0, 1),
    T("RMON-MIB", "fallingAlarm", MIB2, 16, 0, 2),
    C("RMON-MIB", "alarmIndex", NULL, RMONALARM, 1),
    C("RMON-MIB", "alarmInterval", NULL, RMONALARM, 2),
    C("RMON-MIB", "alarmVariable", NULL, RMONALARM, 3),
    C("RMON-MIB", "alarmSampleType", en_rmon_sample, RMONALARM, 4),
    C("RMON-MIB", "alarmValue", NULL, RMONALARM, 5),
    C("RMON-MIB", "alarmStartupAlarm", NULL, RMONALARM, 6),
    C("RMON-MIB", "alarmRisingThreshold", NULL, RMONALARM, 7),
    C("RMON-MIB", "alarmFallingThreshold", NULL, RMONALARM, 8),
    T("BRIDGE-MIB", "newRoot", MIB2, 17, 0, 1),
    T("BRIDGE-MIB", "topologyChange", MIB2, 17, 0, 2),
    C("IF-MIB", "ifName", NULL, IFX, 1),
    C("IF-MIB", "ifInMulticastPkts", NULL, IFX, 2),
    C("IF-MIB", "ifInBroadcastPkts", NULL, IFX, 3),
    C("IF-MIB", "ifOutMulticastPkts", NULL, IFX, 4),
    C("IF-MIB", "ifOutBroadcastPkts", NULL, IFX, 5),
    C("IF-MIB", "ifHCInOctets", NULL, IFX, 6),
    C("IF-MIB", "ifHCInUcastPkts", NULL, IFX, 7),
    C("IF-MIB", "ifHCInMulticastPkts", NULL, IFX, 8),
    C("IF-MIB", "ifHCInBroadcastPkts", NULL, IFX, 9),
    C("IF-MIB", "ifHCOutOctets", NULL, IFX, 10),
    C("IF-MIB", "ifHCOutUcastPkts", NULL, IFX, 11),
    C("IF-MIB", "ifHCOutMulticastPkts", NULL, IFX, 12),
    C("IF-MIB", "ifHCOutBroadcastPkts", NULL, IFX, 13),
    C("IF-MIB", "ifLinkUpDownTrapEnable", en_enabled, IFX, 14),
    C("IF-MIB", "ifHighSpeed", NULL, IFX, 15),
    C("IF-MIB", "ifPromiscuousMode", en_truth, IFX, 16),
    C("IF-MIB", "ifConnectorPresent", en_truth, IFX, 17),
    C("IF-MIB", "ifAlias", NULL, IFX, 18),
    C("IF-MIB", "ifCounterDiscontinuityTime", NULL, IFX, 19),
    S("UPS-MIB", "upsBatteryStatus", en_ups_battery, UPS, 1, 2, 1),
    S("UPS-MIB", "upsSecondsOnBattery", NULL, UPS, 1, 2, 2),
    S("UPS-MIB", "upsEstimatedMinutesRemaining", NULL, UPS, 1, 2, 3),
    S("UPS-MIB", "upsEstimatedChargeRemaining", NULL, UPS, 1, 2, 4),
    S("UPS-MIB", "upsOutputSource", en_ups_output, UPS, 1, 4, 1),
    S("UPS-MIB", "upsAlarmsPresent", NULL, UPS, 1, 6, 1),
    C("UPS-MIB", "upsAlarmId", NULL, UPS, 1, 6, 2, 1, 1),
    C("UPS-MIB", "upsAlarmDescr", NULL, UPS, 1, 6, 2, 1, 2),
    C("UPS-MIB", "upsAlarmTime", NULL, UPS, 1, 6, 2, 1, 3),
    I("UPS-MIB", "upsAlarmBatteryBad", UPSALARM, 1),
    I("UPS-MIB", "upsAlarmOnBattery", UPSALARM, 2),
    I("UPS-MIB", "upsAlarmLowBattery", UPSALARM, 3),
    I("UPS-MIB", "upsAlarmDepletedBattery", UPSALARM, 4),
    I("UPS-MIB", "upsAlarmTempBad", UPSALARM, 5),
    I("UPS-MIB", "upsAlarmInputBad", UPSALARM, 6),
    I("UPS-MIB", "upsAlarmOutputBad", UPSALARM, 7),
    I("UPS-MIB", "upsAlarmOutputOverload", UPSALARM, 8),
    I("UPS-MIB", "upsAlarmOnBypass", UPSALARM, 9),
    I("UPS-MIB", "upsAlarmBypassBad", UPSALARM, 10),
    I("UPS-MIB", "upsAlarmOutputOffAsRequested", UPSALARM, 11),
    I("UPS-MIB", "upsAlarmUpsOffAsRequested", UPSALARM, 12),
    I("UPS-MIB", "upsAlarmChargerFailed", UPSALARM, 13),
    I("UPS-MIB", "upsAlarmUpsOutputOff", UPSALARM, 14),
    I("UPS-MIB", "upsAlarmUpsSystemOff", UPSALARM, 15),
    I("UPS-MIB", "upsAlarmFanFailure", UPSALARM, 16),
    I("UPS-MIB", "upsAlarmFuseFailure", UPSALARM, 17),
    I("UPS-MIB", "upsAlarmGeneralFault", UPSALARM, 18),
    I("UPS-MIB", "upsAlarmDiagnosticTestFailed", UPSALARM, 19),
    I("UPS-MIB", "upsAlarmCommunicationsLost", UPSALARM, 20),
    I("UPS-MIB", "upsAlarmAwaitingPower", UPSALARM, 21),
    I("UPS-MIB", "upsAlarmShutdownPending", UPSALARM, 22),
    I("UPS-MIB", "upsAlarmShutdownImminent", UPSALARM, 23),
    I("UPS-MIB", "upsAlarmTestInProgress", UPSALARM, 24),
    S("UPS-MIB", "upsTestId", NULL, UPS, 1, 7, 1),
    S("UPS-MIB", "upsTestResultsSummary", en_ups_test, UPS, 1, 7, 3),
    S("UPS-MIB", "upsTestResultsDetail", NULL, UPS, 1, 7, 4),
    S("UPS-MIB", "upsConfigLowBattTime", NULL, UPS, 1, 9, 7),
    T("UPS-MIB", "upsTrapOnBattery", UPS, 2, 1),
    T("UPS-MIB", "upsTrapTestCompleted", UPS, 2, 2),
    T("UPS-MIB", "upsTrapAlarmEntryAdded", UPS, 2, 3),
    T("UPS-MIB", "upsTrapAlarmEntryRemoved", UPS, 2, 4),
    C("ENTITY-MIB", "entPhysicalIndex", NULL, ENTPHY, 1),
    C("ENTITY-MIB", "entPhysicalDescr", NULL, ENTPHY, 2),
    C("ENTITY-MIB", "entPhysicalVendorType", NULL, ENTPHY, 3),
    C("ENTITY-MIB", "entPhysicalContainedIn", NULL, ENTPHY, 4),
    C("ENTITY-MIB", "entPhysicalClass", en_ent_class, ENTPHY, 5),
    C("ENTITY-MIB", "entPhysicalParentRelPos", NULL, ENTPHY, 6),
    C("ENTITY-MIB", "entPhysicalName", NULL, ENTPHY, 7),
    C("ENTITY-MIB", "entPhysicalHardwareRev", NULL, ENTPHY, 8),
    C("ENTITY-MIB", "entPhysicalFirmwareRev", NULL, ENTPHY, 9),
    C("ENTITY-MIB", "entPhysicalSoftwareRev", NULL, ENTPHY, 10),
    C("ENTITY-MIB", "entPhysicalSerialNum", NULL, ENTPHY, 11),
    C("ENTITY-MIB", "entPhysicalMfgName", NULL, ENTPHY, 12),
    C("ENTITY-MIB", "entPhysicalModelName", NULL, ENTPHY, 13),
    C("ENTITY-MIB", "entPhysicalAlias", NULL, ENTPHY, 14),
    C("ENTITY-MIB", "entPhysicalAssetID", NULL, ENTPHY, 15),
    C("ENTITY-MIB", "entPhysicalIsFRU", en_truth, ENTPHY, 16),
    C("ENTITY-MIB", "entPhysicalMfgDate", NULL, ENTPHY, 17),
    C("ENTITY-MIB", "entPhysicalUris", NULL, ENTPHY, 18),
    S("ENTITY-MIB", "entLastChangeTime", NULL, MIB2, 47, 1, 4, 1),
    T("ENTITY-MIB", "entConfigChange", MIB2, 47, 2, 0, 1),
    T("VRRP-MIB", "vrrpTrapNewMaster", MIB2, 68, 0, 1),
    T("VRRP-MIB", "vrrpTrapAuthFailure", MIB2, 68, 0, 2),
    T("DISMAN-EVENT-MIB", "mteTriggerFired", MTE, 0, 1),
    T("DISMAN-EVENT-MIB", "mteTriggerRising", MTE, 0, 2),
    T("DISMAN-EVENT-MIB", "mteTriggerFalling", MTE, 0, 3),
    S("DISMAN-EVENT-MIB", "mteHotTrigger", NULL, MTE, 1, 1),
    S("DISMAN-EVENT-MIB", "mteHotTargetName", NULL, MTE, 1, 2),
    S("DISMAN-EVENT-MIB", "mteHotContextName", NULL, MTE, 1, 3),
    S("DISMAN-EVENT-MIB", "mteHotOID", NULL, MTE, 1, 4),
    S("DISMAN-EVENT-MIB", "mteHotValue", NULL, MTE, 1, 5),
    T("ENTITY-STATE-MIB", "entStateOperEnabled", ENTSTATE, 0, 1),
    T("ENTITY-STATE-MIB", "entStateOperDisabled", ENTSTATE, 0, 2),
    C("ENTITY-STATE-MIB", "entStateLastChanged", NULL, ENTSTATE, 1, 1, 1, 1),
    C("ENTITY-STATE-MIB", "entStateAdmin", en_ent_admin, ENTSTATE, 1, 1, 1, 2),
    C("ENTITY-STATE-MIB", "entStateOper", en_ent_oper, ENTSTATE, 1, 1, 1, 3),
    C("ENTITY-STATE-MIB", "entStateUsage", en_ent_usage, ENTSTATE, 1, 1, 1, 4),
    C("ENTITY-STATE-MIB", "entStateAlarm", NULL, ENTSTATE, 1, 1, 1, 5),
    C("ENTITY-STATE-MIB", "entStateStandby", en_ent_standby, ENTSTATE, 1, 1, 1, 6),
    N("SNMPv2-SMI", "enterprises", 1, 3, 6, 1, 4, 1),
    T("NET-SNMP-AGENT-MIB", "nsNotifyStart", 1, 3, 6, 1, 4, 1, 8072, 4, 0, 1),
    T("NET-SNMP-AGENT-MIB", "nsNotifyShutdown", 1, 3, 6, 1, 4, 1, 8072, 4, 0, 2),
    T("NET-SNMP-AGENT-MIB", "nsNotifyRestart", 1, 3, 6, 1, 4, 1, 8072, 4, 0, 3),
    S("SNMPv2-MIB", "snmpTrapOID", NULL, 1, 3, 6, 1, 6, 3, 1, 1, 4, 1),
    S("SNMPv2-MIB", "snmpTrapEnterprise", NULL, 1, 3, 6, 1, 6, 3, 1, 1, 4, 3),
    N("SNMPv2-MIB", "snmpTraps", SNMPTRAPS),
    T("SNMPv2-MIB", "coldStart", SNMPTRAPS, 1),
    T("SNMPv2-MIB", "warmStart", SNMPTRAPS, 2),
    T("IF-MIB", "linkDown", SNMPTRAPS, 3),
    T("IF-MIB", "linkUp", SNMPTRAPS, 4),
    T("SNMPv2-MIB", "authenticationFailure", SNMPTRAPS, 5),
    /* RFC 1213's TRAP-TYPE, snmpTraps.6 per RFC 3584 §3.1 */
    T("RFC1213-MIB", "egpNeighborLoss", SNMPTRAPS, 6),
    S("SNMP-COMMUNITY-MIB", "snmpTrapAddress", NULL, 1, 3, 6, 1, 6, 3, 18, 1, 3),
    S("SNMP-COMMUNITY-MIB", "snmpTrapCommunity", NULL, 1, 3, 6, 1, 6, 3, 18, 1, 4),
};

#define NNAMES (sizeof(g_names) / sizeof(g_names[0]))

/* ---- tables and their indexes ------------------------------------------------------------- */

/*
 * A name table sorted by OID, with two indexes: the longest proper prefix of
 * each entry (so a lookup walks up from the first entry after the OID), and
 * the entries in name order. The built-in table is indexed once; the table
 * from MIB files (opsc_mibnames_install) is built whole before it is
 * published and never changes afterwards, so readers on any thread need no
 * lock.
 */
typedef struct table_s {
    const opsc_mib_name_t *names;
    size_t n;
    int32_t *parent;   /* -1 = none */
    uint32_t *by_name; /* entry indexes sorted by name */
} table_t;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int32_t g_builtin_parent[NNAMES];
static uint32_t g_builtin_by_name[NNAMES];
static table_t g_builtin = {g_names, NNAMES, g_builtin_parent, g_builtin_by_name};
static _Atomic(const table_t *) g_extra;

static int oid_cmp(const uint32_t *a, uint32_t alen, const uint32_t *b, uint32_t blen) {
    uint32_t n = alen < blen ? alen : blen;
    for (uint32_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return a[i] < b[i] ? -1 : 1;
        }
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int is_prefix(const opsc_mib_name_t *e, const uint32_t *oid, uint32_t len) {
    return e->oid_len <= len && memcmp(e->oid, oid, e->oid_len * sizeof(uint32_t)) == 0;
}

static const opsc_mib_name_t *g_sorting; /* qsort has no context argument */

static int by_name_cmp(const void *a, const void *b) {
    return strcmp(g_sorting[*(const uint32_t *)a].name, g_sorting[*(const uint32_t *)b].name);
}

/* `stack` has room for t->n entries. */
static void table_index(table_t *t, int32_t *stack) {
    size_t depth = 0;
    for (size_t i = 0; i < t->n; i++) {
        while (depth > 0 &&
               !is_prefix(&t->names[stack[depth - 1]], t->names[i].oid, t->names[i].oid_len)) {
            depth--;
        }
        t->parent[i] = depth > 0 ? stack[depth - 1] : -1;
        stack[depth++] = (int32_t)i;
        t->by_name[i] = (uint32_t)i;
    }
    g_sorting = t->names;
    qsort(t->by_name, t->n, sizeof(t->by_name[0]), by_name_cmp);
    g_sorting = NULL;
}

static void build_builtin(void) {
    static int32_t stack[NNAMES];
    table_index(&g_builtin, stack);
}

static void ensure_indexes(void) {
    pthread_once(&g_once, build_builtin);
}

static const opsc_mib_name_t *table_lookup(const table_t *t, const uint32_t *oid, uint32_t len) {
    /* first entry > oid */
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (oid_cmp(t->names[mid].oid, t->names[mid].oid_len, oid, len) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (int32_t i = (int32_t)lo - 1; i >= 0; i = t->parent[i]) {
        if (is_prefix(&t->names[i], oid, len)) {
            return &t->names[i];
        }
    }
    return NULL;
}

static const opsc_mib_name_t *table_find(const table_t *t, const char *name, size_t nlen) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *cand = t->names[t->by_name[mid]].name;
        int c = strncmp(cand, name, nlen);
        if (c == 0 && cand[nlen] != '\0') {
            c = 1; /* cand is longer: it sorts after name */
        }
        if (c == 0) {
            return &t->names[t->by_name[mid]];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

size_t opsc_mibnames_count(void) {
    return NNAMES;
}

const opsc_mib_name_t *opsc_mibnames_at(size_t i) {
    return i < NNAMES ? &g_names[i] : NULL;
}

size_t opsc_mibnames_extra_count(void) {
    const table_t *x = atomic_load_explicit(&g_extra, memory_order_acquire);
    return x ? x->n : 0;
}

static int by_oid_cmp(const void *a, const void *b) {
    const opsc_mib_name_t *x = a, *y = b;
    return oid_cmp(x->oid, x->oid_len, y->oid, y->oid_len);
}

int opsc_mibnames_install(opsc_mib_name_t *names, size_t n) {
    table_t *t = opsc_calloc(1, sizeof(*t));
    int32_t *stack = opsc_calloc(n ? n : 1, sizeof(*stack));
    if (t) {
        t->parent = opsc_calloc(n ? n : 1, sizeof(*t->parent));
        t->by_name = opsc_calloc(n ? n : 1, sizeof(*t->by_name));
    }
    if (!t || !stack || !t->parent || !t->by_name) {
        if (t) {
            opsc_free(t->parent);
            opsc_free(t->by_name);
        }
        opsc_free(t);
        opsc_free(stack);
        return OPSC_ENOMEM;
    }
    qsort(names, n, sizeof(*names), by_oid_cmp);
    t->names = names;
    t->n = n;
    table_index(t, stack);
    opsc_free(stack);
    const table_t *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&g_extra, &expected, t, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        opsc_free(t->parent);
        opsc_free(t->by_name);
        opsc_free(t);
        return OPSC_ECONFIG; /* once per process */
    }
    return 0;
}

const opsc_mib_name_t *opsc_mibnames_lookup(const uint32_t *oid, uint32_t len) {
    ensure_indexes();
    const opsc_mib_name_t *e = table_lookup(&g_builtin, oid, len);
    const table_t *x = atomic_load_explicit(&g_extra, memory_order_acquire);
    if (x) {
        /* The longer match wins; on a tie the built-in entry (its names are the standard's). */
        const opsc_mib_name_t *f = table_lookup(x, oid, len);
        if (f && (!e || f->oid_len > e->oid_len)) {
            e = f;
        }
    }
    return e;
}

/* name[0..nlen) with an optional "MODULE::" qualifier. */
static const opsc_mib_name_t *find_n(const char *name, size_t nlen) {
    ensure_indexes();
    const char *module = NULL;
    size_t mlen = 0;
    for (size_t i = 0; i + 1 < nlen; i++) {
        if (name[i] == ':' && name[i + 1] == ':') {
            module = name;
            mlen = i;
            name += i + 2;
            nlen -= i + 2;
            break;
        }
    }
    if (nlen == 0) {
        return NULL;
    }
    const table_t *x = atomic_load_explicit(&g_extra, memory_order_acquire);
    const table_t *tables[2] = {&g_builtin, x};
    for (int i = 0; i < 2 && tables[i]; i++) {
        const opsc_mib_name_t *e = table_find(tables[i], name, nlen);
        if (e && (!module || (strncmp(e->module, module, mlen) == 0 && e->module[mlen] == '\0'))) {
            return e;
        }
    }
    return NULL;
}

const opsc_mib_name_t *opsc_mibnames_find(const char *name) {
    return name ? find_n(name, strlen(name)) : NULL;
}

const char *opsc_mibnames_enum_label(const opsc_mib_name_t *e, int64_t value) {
    if (!e || !e->enums) {
        return NULL;
    }
    for (const opsc_mib_enum_t *v = e->enums; v->label; v++) {
        if (v->value == value) {
            return v->label;
        }
    }
    return NULL;
}

size_t opsc_mibnames_format(const uint32_t *oid, uint32_t len, char *out, size_t outlen) {
    if (outlen == 0) {
        return 0;
    }
    const opsc_mib_name_t *e = opsc_mibnames_lookup(oid, len);
    if (!e) {
        return opsc__oid_format(oid, len, out, outlen);
    }
    size_t ml = strlen(e->module), nl = strlen(e->name), n = 0;
    char *p = out;
    size_t room = outlen - 1;
#define PUT(src, l)                                                                                \
    do {                                                                                           \
        size_t k_ = (l) < room - n ? (l) : room - n;                                               \
        memcpy(p + n, (src), k_);                                                                  \
        n += k_;                                                                                   \
    } while (0)
    PUT(e->module, ml);
    PUT("::", 2);
    PUT(e->name, nl);
#undef PUT
    out[n] = '\0';
    if (len > e->oid_len && n < room) {
        out[n++] = '.';
        out[n] = '\0';
        n += opsc__oid_format(oid + e->oid_len, len - e->oid_len, out + n, outlen - n);
    }
    return n;
}

/* ---- shared helpers (normalize_int.h) ------------------------------------------------------ */

size_t opsc__u32_format(uint32_t v, char *out) {
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\0';
    return n;
}

size_t opsc__oid_format(const uint32_t *oid, uint32_t len, char *out, size_t outlen) {
    if (outlen == 0) {
        return 0;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < len; i++) {
        char d[12];
        size_t k = 0;
        if (i > 0) {
            d[k++] = '.';
        }
        k += opsc__u32_format(oid[i], d + k);
        if (n + k > outlen - 1) {
            k = outlen - 1 - n;
            memcpy(out + n, d, k);
            n += k;
            break;
        }
        memcpy(out + n, d, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

int opsc__oid_parse(const char *s, size_t slen, uint32_t *oid, uint32_t max, const char **why) {
    const char *reason = NULL;
    size_t i = 0;
    uint32_t n = 0;
    if (slen > 0 && s[0] == '.') {
        i = 1;
    }
    if (i >= slen) {
        reason = "empty OID";
        goto error;
    }
    while (i < slen) {
        if (s[i] < '0' || s[i] > '9') {
            reason = s[i] == '.' ? "empty sub-identifier" : "not a dotted decimal OID";
            goto error;
        }
        if (s[i] == '0' && i + 1 < slen && s[i + 1] >= '0' && s[i + 1] <= '9') {
            reason = "leading zero in a sub-identifier";
            goto error;
        }
        uint64_t v = 0;
        while (i < slen && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (uint64_t)(s[i] - '0');
            if (v > UINT32_MAX) {
                reason = "sub-identifier above 4294967295";
                goto error;
            }
            i++;
        }
        if (n >= max) {
            reason = "too many sub-identifiers";
            goto error;
        }
        oid[n++] = (uint32_t)v;
        if (i < slen) {
            if (s[i] != '.') {
                reason = "not a dotted decimal OID";
                goto error;
            }
            i++;
            if (i == slen) {
                reason = "trailing dot";
                goto error;
            }
        }
    }
    return (int)n;
error:
    if (why) {
        *why = reason;
    }
    return OPSC_EPARSE;
}

int opsc__object_resolve(const char *s, size_t slen, uint32_t *oid, uint32_t max) {
    if (slen == 0) {
        return OPSC_EPARSE;
    }
    if (s[0] == '.' || (s[0] >= '0' && s[0] <= '9')) {
        return opsc__oid_parse(s, slen, oid, max, NULL);
    }
    /* NAME or MODULE::NAME, then an optional numeric instance. */
    size_t nlen = 0;
    while (nlen < slen && s[nlen] != '.') {
        nlen++;
    }
    const opsc_mib_name_t *e = find_n(s, nlen);
    if (!e) {
        return OPSC_ENOTFOUND;
    }
    if (e->oid_len > max) {
        return OPSC_EPARSE;
    }
    memcpy(oid, e->oid, e->oid_len * sizeof(uint32_t));
    if (nlen == slen) {
        return (int)e->oid_len;
    }
    if (nlen + 1 == slen) {
        return OPSC_EPARSE; /* "ifDescr." */
    }
    int k =
        opsc__oid_parse(s + nlen + 1, slen - nlen - 1, oid + e->oid_len, max - e->oid_len, NULL);
    if (k < 0 || s[nlen + 1] == '.') {
        return OPSC_EPARSE;
    }
    return (int)e->oid_len + k;
}
